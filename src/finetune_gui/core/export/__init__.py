"""Model files a user takes away: formats, conversion, verification, model card.

`job.export_model` runs one export from start to finish; each step is a module of its own:
`formats` (the one list of formats), `destination` (checks, staging, atomic publish),
`check_images` (the held-out images it is checked on), `serving`, `session` and `convert`
(building the file), `runtimes` and `verify` (running it and judging it against Keras),
`card`, `dataset_summary`, `snippets` and `card_markdown` (the model card).
The run folder never imports this package: whoever wants an export calls `export_model`.
"""
