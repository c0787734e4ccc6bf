# cmake -DSOURCE_DIR=... -DBINARY_DIR=... -DWORK_DIR=... -DCONSUMER_DIR=... -P run_consumer_test.cmake
# Installs the built recur into a scratch prefix, then configures, builds and runs a consumer
# project that finds it with find_package(recur) and checks what it prints.
foreach(var SOURCE_DIR BINARY_DIR WORK_DIR CONSUMER_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer_test.cmake: -D${var}=... is required")
  endif()
endforeach()

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/build)
file(REMOVE_RECURSE ${prefix} ${consumer_build})

function(run_step name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: ${name} failed (${rc})\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

run_step("install" ${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${prefix})
if(NOT EXISTS ${prefix}/include/recur/data.hpp)
  message(FATAL_ERROR "consumer test: install did not put include/recur/data.hpp under ${prefix}")
endif()

run_step("configure" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${consumer_build} -G Ninja
         -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix})
run_step("build" ${CMAKE_COMMAND} --build ${consumer_build})
run_step("run" ${consumer_build}/recur_consumer)

foreach(expected
    "split train=55000 validation=5000"
    "view rows steps=28 features=28"
    "batches=860"
    "sha256(abc)=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    "error subject=--view")
  string(FIND "${step_output}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "consumer test: output lacks '${expected}':\n${step_output}")
  endif()
endforeach()
message(STATUS "consumer test: find_package(recur) works from ${prefix}")
