// recur: train, evaluate and run recurrent networks from the command line.
// Exit codes: 0 success, 2 bad usage or bad input (one line on stderr), 1 internal failure.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <exception>

#include "cli/commands.hpp"
#include "recur/error.hpp"

int main(int argc, char** argv) {
  // A write past a file-size limit then fails with EFBIG (reported as an error) instead of
  // killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"recur: recurrent neural networks (RNN, LSTM, GRU) on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "recur 0.1.0");
  recur::cli::Runner run;
  recur::cli::add_data_command(app, run);
  recur::cli::add_train_command(app, run);
  recur::cli::add_eval_command(app, run);
  recur::cli::add_predict_command(app, run);
  recur::cli::add_inspect_command(app, run);
  recur::cli::add_bench_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "recur: error: %s\n", e.what());
    return 2;
  }
  try {
    return run ? run() : 0;
  } catch (const recur::Error& e) {
    std::fprintf(stderr, "recur: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recur: internal error: %s\n", e.what());
    return 1;
  }
}
