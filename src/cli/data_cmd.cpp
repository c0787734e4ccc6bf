// recur data fetch mnist [--data DIR]
// recur data info [mnist] [--data DIR] [--view rows|cols|pixels|permuted]
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "recur/data.hpp"
#include "recur/error.hpp"

namespace recur::cli {

namespace {

struct DataOptions {
  std::string dataset = "mnist";
  std::string dir = "data/mnist";
  std::string view;  // info: empty means every view
};

void require_known_dataset(const std::string& name) {
  if (name != "mnist") throw Error(name, "unknown data set '" + name + "' (known: mnist)");
}

void print_split(const char* name, const ImageSet& set, const std::vector<ViewKind>& views) {
  fmt::print("{}: {} images of {}x{}, {} classes ({})\n", name, set.count, set.rows, set.cols,
             set.num_classes, set.source);
  for (ViewKind kind : views) {
    const SequenceView v = SequenceView::make(kind, set.rows, set.cols);
    fmt::print("  {:<8} view: {} steps x {} features\n", to_string(kind), v.steps(), v.features());
  }
  std::string first;
  for (std::int64_t i = 0; i < std::min<std::int64_t>(5, set.count); ++i) {
    first += (i ? " " : "") + std::to_string(set.labels[static_cast<std::size_t>(i)]);
  }
  fmt::print("  first labels: {}\n", first);
  std::vector<std::int64_t> counts(static_cast<std::size_t>(set.num_classes), 0);
  for (std::int32_t label : set.labels) ++counts[static_cast<std::size_t>(label)];
  std::string line;
  for (std::size_t c = 0; c < counts.size(); ++c) {
    line += fmt::format("{}{}:{}", c ? " " : "", c, counts[c]);
  }
  fmt::print("  class counts: {}\n", line);
}

}  // namespace

void add_data_command(CLI::App& app, Runner& run) {
  CLI::App* data = app.add_subcommand("data", "Fetch and inspect data sets");
  data->require_subcommand(1);

  auto fetch_opts = std::make_shared<DataOptions>();
  CLI::App* fetch =
      data->add_subcommand("fetch", "Download a data set into a folder and verify its checksums");
  fetch->add_option("dataset", fetch_opts->dataset, "Data set name (mnist)")->required();
  fetch->add_option("--data", fetch_opts->dir, "Folder for the files")->capture_default_str();
  fetch->callback([fetch_opts, &run] {
    run = [fetch_opts] {
      require_known_dataset(fetch_opts->dataset);
      fetch_mnist(fetch_opts->dir, std::cout);
      return 0;
    };
  });

  auto info_opts = std::make_shared<DataOptions>();
  CLI::App* info = data->add_subcommand(
      "info", "Print each split's size, image shape, sequence shape per view and label counts");
  info->add_option("dataset", info_opts->dataset, "Data set name (mnist)")->capture_default_str();
  info->add_option("--data", info_opts->dir, "Folder holding the files")->capture_default_str();
  info->add_option("--view", info_opts->view, "Only this view (rows, cols, pixels, permuted)");
  info->callback([info_opts, &run] {
    run = [info_opts] {
      require_known_dataset(info_opts->dataset);
      std::vector<ViewKind> views = {ViewKind::rows, ViewKind::cols, ViewKind::pixels,
                                     ViewKind::permuted};
      if (!info_opts->view.empty()) views = {parse_view(info_opts->view)};
      const ImageSet train = load_mnist(info_opts->dir, true);
      const ImageSet test = load_mnist(info_opts->dir, false);
      fmt::print("{} in {}\n", info_opts->dataset, info_opts->dir);
      print_split("train", train, views);
      print_split("test", test, views);
      return 0;
    };
  });
}

}  // namespace recur::cli
