// The page: loads the embedded ONNX Runtime Web and model, and offers
// window.finetuneGui.classify(imageOrUrl) -> {label, probabilities: {class: p}, unsure}.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("ftg-config").textContent);
  const size = config.image_size;
  const status = document.getElementById("status");

  function say(text, isError) {
    status.textContent = text;
    status.className = isError ? "error" : "";
  }

  // The embedded parts are gzip, then base64: the runtime's wasm is 14 MB raw, 3.7 MB gzipped.
  async function embedded(id) {
    const text = document.getElementById(id).textContent.trim();
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  async function loadSession() {
    const source = new TextDecoder().decode(await embedded("ftg-runtime"));
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const ort = await import(url);
    ort.env.wasm.wasmBinary = await embedded("ftg-wasm");
    ort.env.wasm.numThreads = 1; // a page opened from disk cannot share memory between threads
    ort.env.wasm.proxy = false;
    const model = await embedded("ftg-model");
    const session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"] });
    return { ort, session };
  }

  const ready = loadSession();

  // Any picture the browser can draw, as RGB bytes the size the browser shows it, with
  // transparent parts laid on white as the app does.
  function drawnRgb(source, width, height) {
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.fillStyle = "#fff";
    context.fillRect(0, 0, width, height);
    context.drawImage(source, 0, 0, width, height);
    const rgba = context.getImageData(0, 0, width, height).data;
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
    }
    return rgb;
  }

  async function pixelsFromBlob(blob) {
    let bitmap;
    try {
      // No colour management: the app (Pillow) uses the stored values as they are.
      bitmap = await createImageBitmap(blob, {
        colorSpaceConversion: "none", imageOrientation: "from-image",
      });
    } catch (error) {
      throw new Error("This browser cannot open this file as a picture.");
    }
    const rgb = drawnRgb(bitmap, bitmap.width, bitmap.height);
    const pixels = FinetunePixels.resize(rgb, bitmap.width, bitmap.height, size);
    bitmap.close();
    return pixels;
  }

  function pixelsFromDrawable(source, width, height) {
    return FinetunePixels.resize(drawnRgb(source, width, height), width, height, size);
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error(`Cannot open the picture at ${url}.`));
      image.src = url;
    });
  }

  async function pixelsOf(input) {
    if (input instanceof Blob) return pixelsFromBlob(input);
    if (typeof input === "string" || input instanceof URL) {
      const url = String(input);
      try {
        const response = await fetch(url);
        if (response.ok) return pixelsFromBlob(await response.blob());
      } catch (error) {
        // file:// addresses cannot be fetched from a page opened from disk: draw it instead.
      }
      const image = await loadImage(url);
      return pixelsFromDrawable(image, image.naturalWidth, image.naturalHeight);
    }
    if (input instanceof HTMLImageElement) {
      if (!input.complete) await new Promise((r) => input.addEventListener("load", r, { once: true }));
      if (/^(data|blob|https?):/.test(input.currentSrc || input.src)) {
        try {
          const response = await fetch(input.currentSrc || input.src);
          if (response.ok) return pixelsFromBlob(await response.blob());
        } catch (error) {
          // fall through to drawing the element
        }
      }
      return pixelsFromDrawable(input, input.naturalWidth, input.naturalHeight);
    }
    if (input instanceof HTMLVideoElement) {
      return pixelsFromDrawable(input, input.videoWidth, input.videoHeight);
    }
    if (input instanceof HTMLCanvasElement || input instanceof ImageBitmap) {
      return pixelsFromDrawable(input, input.width, input.height);
    }
    throw new Error("classify() takes an <img>, a Blob or File, or the address of a picture.");
  }

  function isUnsure(probabilities) {
    const rule = config.unsure;
    if (!rule) return false;
    return Math.max(...probabilities) < rule.min_confidence;
  }

  async function classify(input) {
    const { ort, session } = await ready;
    const pixels = await pixelsOf(input);
    const tensor = new ort.Tensor("float32", Float32Array.from(pixels), [1, size, size, 3]);
    const output = await session.run({ [config.input_name]: tensor });
    const values = Array.from(output[config.output_name].data);
    const probabilities = {};
    config.classes.forEach((name, i) => { probabilities[name] = values[i]; });
    const best = values.indexOf(Math.max(...values));
    return { label: config.classes[best], probabilities, unsure: isUnsure(values) };
  }

  // The model's input for a picture: size x size x 3 RGB bytes, as the app would prepare them.
  async function pixels(input) {
    return Array.from(await pixelsOf(input));
  }

  window.finetuneGui = {
    classify, pixels, ready: ready.then(() => true), classes: config.classes.slice(),
  };

  // -- the page ----------------------------------------------------------------------------
  document.title = `${config.name}: try the model`;
  document.getElementById("run-name").textContent = `${config.name}: try the model`;
  document.getElementById("run-classes").textContent =
    `Knows ${config.classes.length} classes: ${config.classes.join(", ")}.`;
  document.getElementById("run-accuracy").textContent = config.test_accuracy === null
    ? "Test accuracy: not measured."
    : `Right on ${(100 * config.test_accuracy).toFixed(1)}% of ${config.test_images} test pictures.`;

  function ranking(result, count) {
    const box = document.createElement("div");
    const answer = document.createElement("div");
    answer.className = result.unsure ? "answer unsure" : "answer";
    answer.textContent = result.unsure ? `Not sure (maybe ${result.label})` : result.label;
    box.appendChild(answer);
    const ranked = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
    for (const [name, p] of ranked.slice(0, count)) {
      const row = document.createElement("div");
      row.className = "row";
      row.innerHTML = '<div><div class="name"></div><div class="bar"><div></div></div></div><div></div>';
      row.querySelector(".name").textContent = name;
      row.querySelector(".bar > div").style.width = `${(100 * p).toFixed(1)}%`;
      row.lastChild.textContent = `${(100 * p).toFixed(1)}%`;
      box.appendChild(row);
    }
    return box;
  }

  async function showFiles(files) {
    const results = document.getElementById("results");
    const pictures = Array.from(files);
    let done = 0;
    for (const file of pictures) {
      const card = document.createElement("div");
      card.className = "card";
      const image = document.createElement("img");
      image.src = URL.createObjectURL(file);
      image.alt = file.name;
      const caption = document.createElement("div");
      caption.className = "muted name";
      caption.textContent = file.name;
      card.append(image, caption);
      results.prepend(card);
      try {
        card.appendChild(ranking(await classify(file), 3));
      } catch (error) {
        const problem = document.createElement("div");
        problem.className = "answer unsure";
        problem.textContent = error.message;
        card.appendChild(problem);
      }
      done += 1;
      say(`Classified ${done} of ${pictures.length} picture(s).`);
    }
  }

  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    showFiles(event.dataTransfer.files);
  });
  document.getElementById("chooser").addEventListener("change", (event) => {
    showFiles(event.target.files);
    event.target.value = "";
  });

  let stream = null;
  async function startCamera() {
    const video = document.getElementById("video");
    const live = document.getElementById("live");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (error) {
      say("The camera could not be opened: allow this page to use it, or check that one is connected.", true);
      return;
    }
    video.srcObject = stream;
    await video.play();
    while (stream) {
      if (video.videoWidth) {
        const result = await classify(video);
        live.replaceChildren(ranking(result, Math.min(5, config.classes.length)));
        say("Camera: classifying live.");
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  function stopCamera() {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
  }

  function show(tab) {
    const camera = tab === "camera";
    document.getElementById("images").style.display = camera ? "none" : "block";
    document.getElementById("camera").style.display = camera ? "block" : "none";
    document.getElementById("tab-images").className = camera ? "" : "on";
    document.getElementById("tab-camera").className = camera ? "on" : "";
    if (camera) startCamera(); else stopCamera();
  }
  document.getElementById("tab-images").addEventListener("click", () => show("images"));
  document.getElementById("tab-camera").addEventListener("click", () => show("camera"));

  ready.then(
    () => say("Ready: drop pictures, choose them, or use the camera."),
    (error) => say(`The model could not be loaded in this browser: ${error.message}`, true),
  );
})();
