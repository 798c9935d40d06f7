"""Labelling a folder with the model's help: from a heap of unsorted pictures to class folders.

The folder is checked (`pictures`), every distinct picture gets frozen features once
(`features`, cached), a softmax head solved on the user's labels proposes a class for the rest
(`proposals`) with an estimate of how many proposals are right, the pictures asked next are
the ones that teach the head most (`asking`), similar pictures can be named as groups
(`groups`), the work is kept in a session file (`session`) and the result is copied out
(`output`). `labeller` puts them together for the window, the command line and the benchmark.
"""
