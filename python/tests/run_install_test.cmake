# `cmake --install BUILD --component python` into a scratch DESTDIR, then `import recur` from the
# root folder with only that copy on the path: the installed package is complete and imports on
# its own (no build tree, no source tree).
# Variables: BINARY_DIR, PYTHON, INSTALL_DIR (RECUR_PYTHON_INSTALL_DIR), WORK_DIR, VERSION.
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -E env DESTDIR=${WORK_DIR}
                        ${CMAKE_COMMAND} --install ${BINARY_DIR} --component python
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install --component python failed:\n${out}")
endif()
set(site ${WORK_DIR}${INSTALL_DIR})
foreach(f __init__.py datasets.py _recur.pyi py.typed)
  if(NOT EXISTS ${site}/recur/${f})
    message(FATAL_ERROR "not installed: ${site}/recur/${f}")
  endif()
endforeach()
file(GLOB so ${site}/recur/_recur*.so)
if(NOT so)
  message(FATAL_ERROR "the compiled module was not installed in ${site}/recur")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=PYTHONPATH PYTHONPATH=${site} PYTHONNOUSERSITE=1
                        ${PYTHON} -c "import recur; print(recur.__version__, recur.__file__)"
  WORKING_DIRECTORY / RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "^${VERSION} ${site}/recur/__init__.py")
  message(FATAL_ERROR "import recur from the installed copy failed (${rc}): ${out}${err}")
endif()
message(STATUS "installed and imported: ${out}")
