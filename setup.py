"""Builds the compiled part of the recur package (recur._recur) with CMake for `pip install .`.

The extension is the RECUR_PYTHON target of the repository's CMake build (python/CMakeLists.txt),
configured for the interpreter running the build (Python3_EXECUTABLE) in build-pip-<tag>/ and
copied where setuptools packs it; setuptools' own files go to build-pip/. ccache applies as in
the other builds (a build folder beside build/ reuses its objects when the flags match). The pure-Python files and the metadata come from pyproject.toml.
Environment: RECUR_PIP_BUILD_DIR overrides the CMake build folder, RECUR_PIP_JOBS the build jobs
(default: every CPU), RECUR_PIP_CMAKE_ARGS adds configure arguments (e.g. -DRECUR_NATIVE=ON).
"""
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
BUILD = ROOT / "build-pip"


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        tag = sysconfig.get_config_var("SOABI") or f"py{sys.version_info[0]}{sys.version_info[1]}"
        build_dir = Path(os.environ.get("RECUR_PIP_BUILD_DIR", ROOT / f"build-pip-{tag}"))
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
            "-DRECUR_PYTHON=ON", "-DRECUR_TESTS=OFF", "-DRECUR_BENCH=OFF",
            f"-DPython3_EXECUTABLE={sys.executable}",
            *shlex.split(os.environ.get("RECUR_PIP_CMAKE_ARGS", "")),
        ]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
        subprocess.run(configure, check=True)
        jobs = os.environ.get("RECUR_PIP_JOBS", str(os.cpu_count() or 1))
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "recur_python", "-j", jobs],
                       check=True)
        built = sorted((build_dir / "python" / "recur").glob("_recur*.so"))
        if not built:
            raise RuntimeError(f"the CMake build left no _recur*.so in {build_dir}/python/recur")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[-1], target)


BUILD.mkdir(exist_ok=True)
setup(ext_modules=[CMakeExtension("recur._recur")], cmdclass={"build_ext": CMakeBuild},
      options={"build": {"build_base": str(BUILD)}, "egg_info": {"egg_base": str(BUILD)}})
