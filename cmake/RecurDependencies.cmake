# Every third-party library recur uses comes from Debian's packages (scripts/install-deps.sh).
find_package(fmt REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(CLI11 REQUIRED)
find_package(PNG REQUIRED)
find_package(ZLIB REQUIRED)
# Boost.Asio and Boost.Beast (libboost-dev, headers only), for `recur serve`'s HTTP layer.
find_package(Boost 1.74 REQUIRED)

# OpenBLAS through CBLAS. Linked by path so the exported package needs no imported target for it.
find_path(RECUR_BLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu /usr/include/openblas
  PATH_SUFFIXES openblas-pthread openblas-openmp openblas-serial)
find_library(RECUR_BLAS_LIBRARY NAMES openblas)
if(NOT RECUR_BLAS_INCLUDE_DIR OR NOT RECUR_BLAS_LIBRARY)
  message(FATAL_ERROR "OpenBLAS not found: run scripts/install-deps.sh (Debian package libopenblas-dev)")
endif()
