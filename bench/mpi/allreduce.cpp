// recur_allreduce_bench: the time of the per-step gradient all-reduce of data-parallel training
// (dist::ordered_sum, the code `recur train` runs under mpirun) at the gradient-arena sizes of
// the README's models and of an IMDb BiLSTM, next to MPI's own MPI_Allreduce (which sums in an
// order of its choosing, so recur cannot use it and stay bit-identical to threads).
//
//   mpirun -np N build/bench/recur_allreduce_bench [--reps R] [--json]
//
// Every rank fills its arena, all ranks meet at a barrier, then the reduction is timed; a
// repetition's time is the slowest rank's and the median over --reps repetitions (after 3
// untimed) is printed by rank 0, with the bus bandwidth 2 (N - 1) / N * bytes / time that a
// bandwidth-optimal all-reduce moves over each rank's link. The result is checked against the
// exact sum.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "dist/comm.hpp"
#include "recur/model.hpp"

namespace {

struct Arena {
  std::string model;
  std::uint64_t params;
};

std::uint64_t params_of(recur::CellKind cell, int hidden, int input, int classes,
                        bool bidirectional) {
  recur::ModelConfig c;
  c.cell = cell;
  c.hidden = hidden;
  c.input_size = input;
  c.steps = 28;
  c.num_classes = classes;
  c.bidirectional = bidirectional;
  return c.parameter_count();
}

// The slowest rank's time of each repetition; the median of those.
template <typename Op>
double median_seconds(int reps, Op op) {
  std::vector<double> times;
  for (int k = 0; k < reps + 3; ++k) {
    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    op();
    double t = MPI_Wtime() - t0, slowest = 0;
    MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (k >= 3) times.push_back(slowest);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  recur::dist::Session session(argc, argv);
  int reps = 50;
  bool json = false;
  for (int k = 1; k < argc; ++k) {
    if (std::strcmp(argv[k], "--reps") == 0 && k + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++k]));
    } else if (std::strcmp(argv[k], "--json") == 0) {
      json = true;
    } else {
      std::fprintf(stderr, "recur_allreduce_bench: error: unknown argument '%s'\n", argv[k]);
      return 2;
    }
  }
  const int rank = recur::dist::rank(), size = recur::dist::size();
  if (size < 2) {
    std::fprintf(stderr,
                 "recur_allreduce_bench: error: run it under mpirun with 2 or more ranks "
                 "(mpirun -np 2 %s)\n",
                 argv[0]);
    return 2;
  }
  using recur::CellKind;
  // The IMDb BiLSTM: a 20000 x 128 embedding (its gradient all-reduced densely, as recur's arena
  // is) before a bidirectional LSTM-128 and a 2-class head.
  const std::vector<Arena> arenas = {
      {"rnn-128 (mnist-rnn)", params_of(CellKind::rnn_tanh, 128, 28, 10, false)},
      {"gru-128 (mnist-gru)", params_of(CellKind::gru, 128, 28, 10, false)},
      {"lstm-128 (mnist-lstm)", params_of(CellKind::lstm, 128, 28, 10, false)},
      {"imdb-bilstm-128 + emb 20000x128",
       20000ull * 128 + params_of(CellKind::lstm, 128, 128, 2, true)},
  };
  if (rank == 0 && !json)
    std::printf("%d ranks\n%-34s %10s %9s %14s %14s %12s\n", size, "arena", "params", "MB",
                "ordered_sum ms", "MPI_Allreduce", "bus GB/s");
  if (rank == 0 && json) std::printf("[");
  for (std::size_t a = 0; a < arenas.size(); ++a) {
    const std::size_t n = arenas[a].params;
    std::vector<float> data(n), scratch(n);
    // Small integers: every order of summation gives the exact sum, which is checked.
    auto fill = [&] {
      for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<float>((i + rank) % 7);
    };
    fill();
    recur::dist::ordered_sum(data.data(), n, size);
    for (std::size_t i = 0; i < n; ++i) {
      float want = 0;
      for (int r = 0; r < size; ++r) want += static_cast<float>((i + r) % 7);
      if (data[i] != want) {
        std::fprintf(stderr, "recur_allreduce_bench: rank %d: element %zu is %g, not %g\n", rank, i,
                     data[i], want);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
    const double ours = median_seconds(reps, [&] {
      fill();
      recur::dist::ordered_sum(data.data(), n, size);
    });
    const double fill_only = median_seconds(reps, fill);
    const double theirs = median_seconds(reps, [&] {
      fill();
      MPI_Allreduce(data.data(), scratch.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM,
                    MPI_COMM_WORLD);
    });
    const double bytes = 4.0 * n;
    const double t = std::max(1e-9, ours - fill_only);
    const double bus = 2.0 * (size - 1) / size * bytes / t / 1e9;
    if (rank == 0 && !json)
      std::printf("%-34s %10zu %9.2f %14.3f %14.3f %12.2f\n", arenas[a].model.c_str(), n,
                  bytes / 1e6, 1e3 * t, 1e3 * std::max(0.0, theirs - fill_only), bus);
    if (rank == 0 && json)
      std::printf(
          "%s{\"ranks\":%d,\"arena\":\"%s\",\"params\":%zu,\"ordered_sum_ms\":%.4f,"
          "\"mpi_allreduce_ms\":%.4f,\"bus_gb_per_s\":%.3f}",
          a ? "," : "", size, arenas[a].model.c_str(), n, 1e3 * t,
          1e3 * std::max(0.0, theirs - fill_only), bus);
  }
  if (rank == 0 && json) std::printf("]\n");
  return 0;
}
