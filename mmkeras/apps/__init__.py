"""Command-line jobs and authors' tooling, not the library's API.

    cli.py               the `mmkeras` command (quickstart, compare-fusions, bench-generative, download, prepare,
                         serve, pretrain, distribute)
    quickstart.py        the main job behind `mmkeras quickstart`: each modality alone, then fused
    compare.py           every fusion strategy on the same data: `mmkeras compare-fusions` (notebooks 06 and 12)
    bench_generative.py  the generative and contrastive chapters measured: `mmkeras bench-generative`
    notebooks.py         executes course notebooks and cleans their outputs (`tools/execute_notebooks.py`, tests)

They build on the library (`mmkeras.data`, `encoders`, `fusion`, `models`, `training`, ...); nothing in the
library imports them.
"""
