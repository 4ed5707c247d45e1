"""This directory is put first on a traced program's PYTHONPATH (see
`scope_nb.recorder.patchers.children`): its `sitecustomize` starts recording in child Python
processes."""
