// The parts of train() (recur/train.hpp) that live in more than one file of src/train.
#pragma once

#include <iosfwd>
#include <string>

#include "recur/optim.hpp"
#include "recur/train.hpp"

namespace recur {

class ThreadPool;

// Optimizer::set_range_runner's runner over `pool`'s threads (ThreadPool::parallel_for).
Optimizer::RangeRunner pool_range_runner(ThreadPool& pool);

// Text options in range (--embed, --vocab, --min-count, --max-len, the dropouts, --test-data a
// file); Error naming the flag otherwise. Checked whatever the data, so that a bad value never
// waits for the data to be read.
void check_text_options(const TrainOptions& o);

// train() on text or .npy arrays (is_sequence_data(o.data_dir)); `config` is the resolved
// config.toml. `o` has its init flags applied (resolve_model_options).
TrainSummary train_sequence_data(const TrainOptions& o, const std::string& config,
                                 std::ostream& out, bool interactive);

}  // namespace recur
