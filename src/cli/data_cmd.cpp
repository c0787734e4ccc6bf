// recur data fetch mnist|imdb [--data DIR]
// recur data info [mnist] [--data DIR] [--view rows|cols|pixels|permuted]
// recur data info imdb [--data DIR]
// recur data info PATH          (text data)
#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/text.hpp"

namespace recur::cli {

namespace {

struct DataOptions {
  std::string dataset = "mnist";
  std::string dir;   // empty: data/<dataset>
  std::string view;  // info: empty means every view
};

bool is_known_dataset(const std::string& name) {
  return name == "mnist" || name == "imdb";
}

void require_known_dataset(const std::string& name) {
  if (!is_known_dataset(name))
    throw Error(name, "unknown data set '" + name + "' (known: mnist, imdb)");
}

std::string folder_of(const DataOptions& o) {
  return o.dir.empty() ? "data/" + o.dataset : o.dir;
}

std::string class_counts(const std::vector<std::int32_t>& labels, int num_classes,
                         const std::vector<std::string>& names) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(num_classes), 0);
  for (std::int32_t label : labels) ++counts[static_cast<std::size_t>(label)];
  std::string line;
  for (std::size_t c = 0; c < counts.size(); ++c) {
    const std::string name = c < names.size() ? names[c] : std::to_string(c);
    line += fmt::format("{}{}:{}", c ? " " : "", name, counts[c]);
  }
  return line;
}

void print_text_side(const char* name, const TextSet& set) {
  std::int64_t bytes = 0;
  for (const auto& t : set.texts) bytes += static_cast<std::int64_t>(t.size());
  const double mean =
      set.size() ? static_cast<double>(bytes) / static_cast<double>(set.size()) : 0.0;
  fmt::print("{}: {} texts, {} classes, {:.0f} bytes per text on average\n", name, set.size(),
             set.num_classes, mean);
  fmt::print("  class counts: {}\n", class_counts(set.labels, set.num_classes, set.class_names));
}

void print_text_info(const std::string& path) {
  const TextSplit split = load_text_splits(path);
  fmt::print("text data in {}\n", path);
  print_text_side("train", split.train);
  print_text_side("test", split.test);
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
  fetch->add_option("dataset", fetch_opts->dataset, "Data set name (mnist, imdb)")->required();
  fetch->add_option("--data", fetch_opts->dir, "Folder for the files (default: data/<dataset>)");
  fetch->callback([fetch_opts, &run] {
    run = [fetch_opts] {
      require_known_dataset(fetch_opts->dataset);
      if (fetch_opts->dataset == "imdb") {
        fetch_imdb(folder_of(*fetch_opts), std::cout);
      } else {
        fetch_mnist(folder_of(*fetch_opts), std::cout);
      }
      return 0;
    };
  });

  auto info_opts = std::make_shared<DataOptions>();
  CLI::App* info = data->add_subcommand(
      "info", "Print each split's size, image shape, sequence shape per view and label counts");
  info->add_option("dataset", info_opts->dataset,
                   "Data set name (mnist, imdb), or the path of text data or of a folder of .npy "
                   "arrays")
      ->capture_default_str();
  info->add_option("--data", info_opts->dir,
                   "Folder holding a named data set's files (default: data/<dataset>)");
  info->add_option("--view", info_opts->view, "Only this view (rows, cols, pixels, permuted)");
  info->callback([info_opts, &run] {
    run = [info_opts] {
      const std::string& name = info_opts->dataset;
      std::error_code ec;
      if (!is_known_dataset(name)) {
        if (!std::filesystem::exists(name, ec))
          throw Error(name,
                      "neither a known data set (mnist, imdb) nor an existing file or folder");
        if (!info_opts->dir.empty())
          throw Error("--data", "only goes with a data set name, not with a path");
        print_text_info(name);
        return 0;
      }
      if (name == "imdb") {
        const std::string dir = folder_of(*info_opts);
        if (!is_text_data(dir))
          throw Error(dir, "holds no IMDb reviews (fetch them with `recur data fetch imdb --data " +
                               dir + "`)");
        print_text_info(dir);
        return 0;
      }
      const std::string dir = folder_of(*info_opts);
      std::vector<ViewKind> views = {ViewKind::rows, ViewKind::cols, ViewKind::pixels,
                                     ViewKind::permuted};
      if (!info_opts->view.empty()) views = {parse_view(info_opts->view)};
      const ImageSet train = load_mnist(dir, true);
      const ImageSet test = load_mnist(dir, false);
      fmt::print("{} in {}\n", name, dir);
      print_split("train", train, views);
      print_split("test", test, views);
      return 0;
    };
  });
}

}  // namespace recur::cli
