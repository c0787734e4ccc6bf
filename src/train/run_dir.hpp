// What every training loop shares: the run folder, the metrics log and its curves, the
// progress bar.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "core/json_util.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/plot.hpp"

namespace recur {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// metrics.jsonl and curves.png, rewritten atomically at every log point (when `write`).
class MetricsLog {
 public:
  MetricsLog(std::string dir, bool write) : dir_(std::move(dir)), write_(write) {}

  void add(const nlohmann::json& j) {
    lines_ += j.dump() + "\n";
    const double step = json_number(j, "step", dir_ + "/metrics.jsonl");
    if (j.at("kind") == "train") {
      curves_.train_step.push_back(step);
      curves_.train_loss.push_back(json_number(j, "loss", dir_ + "/metrics.jsonl"));
      curves_.train_acc.push_back(100.0 * json_number(j, "accuracy", dir_ + "/metrics.jsonl"));
    } else {
      curves_.val_step.push_back(step);
      curves_.val_loss.push_back(json_number(j, "loss", dir_ + "/metrics.jsonl"));
      curves_.val_acc.push_back(100.0 * json_number(j, "accuracy", dir_ + "/metrics.jsonl"));
    }
  }
  void log(const nlohmann::json& j) {
    add(j);
    if (write_) write_file_atomic(dir_ + "/metrics.jsonl", lines_);
  }
  // A resumed run keeps the points up to its checkpoint's step.
  void restore(std::int64_t up_to_step) {
    const std::string path = dir_ + "/metrics.jsonl";
    if (!std::filesystem::exists(path)) return;
    std::istringstream in(read_file(path));
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      try {
        const auto j = nlohmann::json::parse(line);
        if (json_integer<std::int64_t>(j, "step", path) <= up_to_step) add(j);
      } catch (const nlohmann::json::exception&) {
        throw Error(path, "unreadable line in the metrics log");
      }
    }
  }
  void write_curves(const std::string& title) {
    if (write_) write_training_curves(dir_ + "/curves.png", curves_, title);
  }

 private:
  std::string dir_;
  bool write_;
  std::string lines_;
  TrainingCurves curves_;
};

inline void prepare_run_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) throw Error("--out", dir + " exists and is not a folder");
    if (!fs::is_empty(dir, ec))
      throw Error(
          "--out",
          dir + " exists and is not empty; choose another folder, remove it, or --resume it");
  }
  fs::create_directories(dir, ec);
  if (ec) throw Error("--out", "cannot create " + dir + ": " + ec.message());
}

}  // namespace recur
