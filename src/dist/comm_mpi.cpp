// The process group of an MPI job (RECUR_MPI builds): MPI_COMM_WORLD. Only the main thread calls
// MPI (MPI_THREAD_FUNNELED); the worker threads of each rank never do.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <utility>
#include <vector>

#include "dist/comm.hpp"
#include "recur/error.hpp"

namespace recur::dist {

namespace {

bool g_joined = false;
int g_rank = 0, g_size = 1;

// Whether an MPI launcher started this process: Open MPI's mpirun, a PMIx launcher (srun
// --mpi=pmix, Open MPI 4's mpirun too) or a PMI one (MPICH's hydra, srun --mpi=pmi2).
bool launched_by_mpi() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

// Any failed MPI call (a peer that died, a broken link) ends the whole job at once with a line
// saying which rank saw it, instead of Open MPI's default abort without recur's context.
void on_mpi_error(MPI_Comm*, int* code, ...) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(*code, text, &length);
  std::fprintf(stderr,
               "recur: error: rank %d of %d: an MPI call failed (%.*s); another rank has probably "
               "died, ending the job\n",
               g_rank, g_size, length, text);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

int checked_count(std::size_t n) {
  if (n > static_cast<std::size_t>(INT_MAX))
    throw InternalError("MPI message of more than INT_MAX elements");
  return static_cast<int>(n);
}

// Segment r of [0, n) split into `parts` near-equal contiguous segments.
std::pair<int, int> segment(int n, int parts, int r) {
  const int base = n / parts, extra = n % parts;
  const int begin = r * base + std::min(r, extra);
  return {begin, base + (r < extra ? 1 : 0)};
}

}  // namespace

Session::Session(int& argc, char**& argv) {
  if (!launched_by_mpi()) return;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  g_joined = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  MPI_Errhandler handler;
  MPI_Comm_create_errhandler(on_mpi_error, &handler);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, handler);
  MPI_Errhandler_free(&handler);
}

Session::~Session() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (g_joined && !finalized) MPI_Finalize();
}

int rank() {
  return g_rank;
}
int size() {
  return g_size;
}
bool built_with_mpi() {
  return true;
}

void abort_job(int code) {
  if (g_joined) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

void broadcast(void* data, std::size_t bytes) {
  if (g_size == 1) return;
  MPI_Bcast(data, checked_count(bytes), MPI_BYTE, 0, MPI_COMM_WORLD);
}

void allgather(const void* mine, std::size_t bytes, void* all) {
  if (g_size == 1) {
    if (bytes) std::memmove(all, mine, bytes);
    return;
  }
  const int count = checked_count(bytes);
  MPI_Allgather(mine, count, MPI_BYTE, all, count, MPI_BYTE, MPI_COMM_WORLD);
}

void ordered_sum(float* data, std::size_t n, int contributors) {
  if (g_size == 1) return;
  const int total = checked_count(n);
  static std::vector<int> send_counts, send_offsets, recv_counts, recv_offsets;
  static std::vector<float> received;
  send_counts.resize(g_size);
  send_offsets.resize(g_size);
  recv_counts.resize(g_size);
  recv_offsets.resize(g_size);
  // Reduce-scatter: rank j receives segment j of every rank's buffer, rank by rank.
  const int mine = segment(total, g_size, g_rank).second;
  for (int r = 0; r < g_size; ++r) {
    std::tie(send_offsets[r], send_counts[r]) = segment(total, g_size, r);
    recv_counts[r] = mine;
    recv_offsets[r] = r * mine;
  }
  received.resize(static_cast<std::size_t>(mine) * g_size);
  MPI_Alltoallv(data, send_counts.data(), send_offsets.data(), MPI_FLOAT, received.data(),
                recv_counts.data(), recv_offsets.data(), MPI_FLOAT, MPI_COMM_WORLD);
  float* out = data + send_offsets[g_rank];
  const float* first = received.data();
  std::copy(first, first + mine, out);
  for (int r = 1; r < contributors; ++r) {
    const float* part = received.data() + static_cast<std::size_t>(r) * mine;
    for (int i = 0; i < mine; ++i) out[i] += part[i];
  }
  // All-gather: every rank's summed segment to every rank, in place.
  MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, send_counts.data(), send_offsets.data(),
                 MPI_FLOAT, MPI_COMM_WORLD);
}

}  // namespace recur::dist
