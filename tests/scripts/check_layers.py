#!/usr/bin/env python3
"""Dependencies point down: every source file under src/ and python/src includes only headers of
its own folder and of the folders below it.

    core -> kernels -> nn -> data -> train -> (report, infer) -> front ends (cli, python)
            optim and io sit beside them as the table says.

A public header (include/recur/NAME.hpp) belongs to the folder that implements it (HEADER_HOME).
A header of a folder not allowed to the includer, or a public header this table does not know,
fails the check with the file, the line and the arrow. README.md's layout table says the same.

Usage: check_layers.py SOURCE_DIR
"""
import pathlib
import re
import sys

# The folders each folder may include, besides itself.
ALLOWED = {
    "core": set(),
    "kernels": {"core"},
    "nn": {"core", "kernels"},
    "optim": {"core"},
    "io": {"core", "kernels", "nn"},
    "data": {"core", "kernels", "nn", "io"},
    "dist": {"core"},
    "train": {"core", "kernels", "nn", "optim", "io", "data", "dist"},
    "infer": {"core", "kernels", "nn", "optim", "io", "data", "dist", "train"},
    "report": {"core", "kernels", "nn", "optim", "io", "data", "dist", "train", "infer"},
    "export": {"core", "kernels", "nn", "io", "data", "train", "infer"},
    "serve": {"core", "kernels", "nn", "io", "data", "train", "infer"},
    "cli": {"core", "kernels", "nn", "optim", "io", "data", "dist", "train", "infer", "report",
            "export", "serve"},
    # Python binds the library, as the command line does: never the command line itself.
    "python": {"core", "kernels", "nn", "optim", "io", "data", "dist", "train", "infer",
               "report", "export"},
}

# Which folder implements each public header.
HEADER_HOME = {
    "error": "core", "fs": "core", "rng": "core", "sha256": "core", "limits": "core",
    "cell": "kernels",
    "params": "nn", "model": "nn", "layers": "nn",
    "optim": "optim",
    "safetensors": "io", "image": "io", "checkpoint": "io", "plot": "io", "report": "io",
    "data": "data", "text": "data", "digit_frame": "data", "sources": "data", "augment": "data",
    "train": "train", "fit": "train", "train_options": "train", "pretrain": "train",
    "report_runner": "report",
    "predictor": "infer",
    "export": "export",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def folder_of_include(path):
    """The folder a quoted include belongs to, or None for the includer's own local headers."""
    parts = path.split("/")
    if parts[0] == "recur" and len(parts) == 2:
        name = parts[1].rsplit(".", 1)[0]
        return HEADER_HOME.get(name, "?" + name)
    if parts[0] in ALLOWED and len(parts) >= 2:
        return parts[0]
    return None


def main():
    root = pathlib.Path(sys.argv[1])
    problems = []
    files = [(p, p.relative_to(root / "src").parts[0]) for p in sorted((root / "src").rglob("*"))
             if p.suffix in (".cpp", ".hpp")]
    files += [(p, "python") for p in sorted((root / "python" / "src").rglob("*"))
              if p.suffix in (".cpp", ".hpp")]
    for name in HEADER_HOME:
        header = root / "include" / "recur" / (name + ".hpp")
        if header.exists():
            files.append((header, HEADER_HOME[name]))
    for header in sorted((root / "include" / "recur").glob("*.hpp")):
        if header.stem not in HEADER_HOME:
            problems.append(f"{header.relative_to(root)}: a public header the layer table "
                            "(tests/scripts/check_layers.py HEADER_HOME) does not place")
    for path, folder in files:
        if folder not in ALLOWED:
            problems.append(f"{path.relative_to(root)}: folder '{folder}' is not in the layer "
                            "table (tests/scripts/check_layers.py ALLOWED)")
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = folder_of_include(m.group(1))
            if target is None or target == folder:
                continue
            if target.startswith("?"):
                problems.append(f"{path.relative_to(root)}:{number}: includes {m.group(1)}, "
                                "which the layer table does not place")
            elif target not in ALLOWED[folder]:
                problems.append(f"{path.relative_to(root)}:{number}: {folder} -> {target} "
                                f"({m.group(1)}): {folder} may include only "
                                f"{', '.join(sorted(ALLOWED[folder])) or 'itself'}")
    for p in problems:
        print(p)
    print(f"{len(files)} files checked, {len(problems)} arrows pointing up")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
