"""`python -m console.cli`: the same commands as `gpuops` (how the project starts its own twin)."""

from console.cli.entry import main

main()
