// recur report [--data DIR] [--out DIR] [--long] [--text [--text-data PATH]] [--threads N]
//   trains (or reuses) the report's models on one IDX image set, measures them and writes
//   OUT/report.html, OUT/report.md and OUT/report.json (recur/report_runner.hpp); --text adds
//   the IMDb pair, a BiLSTM against a 1-D CNN over embeddings (src/report/report_text.cpp).
// recur report --from-json FILE [--out DIR]
//   writes report.html and report.md from measured numbers kept as JSON (recur/report.hpp's
//   report_to_json form): the page of a finished comparison, rendered again without training.
// Hidden: --budget tiny (tests), --train-one NAME (the child process that trains one model).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/report.hpp"
#include "recur/report_runner.hpp"

namespace recur::cli {

namespace {

struct ReportOptions {
  std::string from_json;
  std::string out = "runs/report";
  std::string data = "data/mnist";
  std::string budget = "default";
  std::string train_one;
  std::string text_data = "data/imdb";
  bool long_views = false;
  bool text = false;
  int threads = 0;
};

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw Error("/proc/self/exe", "cannot find the recur executable");
  return std::string(buf, static_cast<std::size_t>(n));
}

int run_report_cmd(const ReportOptions& o) {
  if (!o.from_json.empty()) {
    const Report report = report_from_json(read_file(o.from_json), o.from_json);
    write_report(o.out, report);
    std::printf("wrote %s/report.html and %s/report.md (%zu models)\n", o.out.c_str(),
                o.out.c_str(), report.models.size());
    return 0;
  }
  ReportRunOptions r;
  r.data_dir = o.data;
  r.out_dir = o.out;
  r.long_views = o.long_views;
  r.threads = o.threads;
  r.budget = parse_report_budget(o.budget);
  r.text = o.text;
  r.text_data = o.text_data;
  if (!o.train_one.empty()) {
    train_report_model(r, o.train_one, std::cout);
    return 0;
  }
  r.executable = self_executable();
  run_report(r, std::cout);
  return 0;
}

}  // namespace

void add_report_command(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Train and measure RNNs, LSTMs, GRUs, an MLP and a CNN on one image data set (--text: "
      "and a BiLSTM against a 1-D CNN on IMDb) and write the comparison (report.html, "
      "report.md)");
  cmd->add_option("--data", o->data, "Folder of the IDX image set (MNIST's file names)")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "Folder for the runs, report.html and report.md")
      ->capture_default_str();
  cmd->add_flag("--long", o->long_views,
                "Add the pixel-by-pixel and permuted-pixel LSTMs (long budgets)");
  cmd->add_flag("--text", o->text,
                "Add IMDb: a BiLSTM against a 1-D CNN over embeddings (needs `recur data fetch "
                "imdb`)");
  cmd->add_option("--text-data", o->text_data,
                  "Text data for --text (data/imdb, a reviews.json, aclImdb or label<TAB>text)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (0 = every core)")->capture_default_str();
  cmd->add_option(
      "--from-json", o->from_json,
      "Only write the pages from measures kept as JSON (a report folder's report.json)");
  cmd->add_option("--budget", o->budget, "default or tiny (for tests)")->group("");
  cmd->add_option("--train-one", o->train_one, "Train one planned model (the child process)")
      ->group("");
  cmd->callback([o, &run] { run = [o]() { return run_report_cmd(*o); }; });
}

}  // namespace recur::cli
