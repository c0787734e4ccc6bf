// One function per subcommand: each adds its subcommand and options to the app and sets `run`
// to what executes it once the command line is parsed. main.cpp turns errors into exit codes.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace recur::cli {

using Runner = std::function<int()>;

void add_data_command(CLI::App& app, Runner& run);
void add_train_command(CLI::App& app, Runner& run);
void add_pretrain_command(CLI::App& app, Runner& run);
void add_eval_command(CLI::App& app, Runner& run);
void add_predict_command(CLI::App& app, Runner& run);
void add_inspect_command(CLI::App& app, Runner& run);
void add_bench_command(CLI::App& app, Runner& run);
void add_report_command(CLI::App& app, Runner& run);
void add_export_command(CLI::App& app, Runner& run);
void add_serve_command(CLI::App& app, Runner& run);

}  // namespace recur::cli
