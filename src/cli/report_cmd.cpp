// recur report --from-json FILE [--out DIR]
// Writes report.html and report.md from measured numbers kept as JSON (recur/report.hpp's
// report_to_json form): the page of a finished comparison, rendered again without training.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "recur/fs.hpp"
#include "recur/report.hpp"

namespace recur::cli {

namespace {

struct ReportOptions {
  std::string from_json;
  std::string out = "runs/report";
};

int run_report(const ReportOptions& o) {
  const Report report = report_from_json(read_file(o.from_json), o.from_json);
  write_report(o.out, report);
  std::printf("wrote %s/report.html and %s/report.md (%zu models)\n", o.out.c_str(), o.out.c_str(),
              report.models.size());
  return 0;
}

}  // namespace

void add_report_command(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd =
      app.add_subcommand("report", "Write the comparison report (report.html, report.md)");
  cmd->add_option("--from-json", o->from_json,
                  "Measures of the models as JSON (the report.json of a report folder)")
      ->required();
  cmd->add_option("--out", o->out, "Folder for report.html and report.md")->capture_default_str();
  cmd->callback([o, &run] { run = [o]() { return run_report(*o); }; });
}

}  // namespace recur::cli
