// The process group of a data-parallel run: the MPI job when recur is built with RECUR_MPI and
// started by an MPI launcher (mpirun, srun), otherwise this one process. Everything here is
// collective over the group (every rank calls it, in the same order) and a no-op for one
// process; comm_mpi.cpp holds the only MPI code, comm_local.cpp the single-process build.
#pragma once

#include <cstddef>

namespace recur::dist {

// Joins the job for the lifetime of main(): MPI_Init only when a launcher started this process
// (its environment says so), so a plain `recur ...` never touches MPI even in an MPI build.
class Session {
 public:
  Session(int& argc, char**& argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
};

int rank();  // 0 for a single process
int size();  // 1 for a single process
bool built_with_mpi();

// Ends every process of the job with exit code `code` (MPI_Abort); for one process, exit(code).
[[noreturn]] void abort_job(int code);

// Copies rank 0's `bytes` at `data` to every rank.
void broadcast(void* data, std::size_t bytes);

// all[r * bytes, (r + 1) * bytes) = rank r's `mine`, on every rank.
void allgather(const void* mine, std::size_t bytes, void* all);

// data[i] = d_0[i] + d_1[i] + ... + d_{c-1}[i] on every rank, d_r being rank r's data and c =
// `contributors` (ranks >= c only receive), added left to right in rank order: the same float
// operations as a single process summing c buffers in that order, so the result is
// bit-identical to it. Bandwidth-optimal like a ring all-reduce: a reduce-scatter (each rank
// sums one segment of the buffer from every rank) and an all-gather of the segments; each rank
// sends and receives 2 (size - 1) / size of the buffer.
void ordered_sum(float* data, std::size_t n, int contributors);

}  // namespace recur::dist
