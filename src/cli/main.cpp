// recur: train, evaluate and run recurrent networks from the command line.
// Exit codes: 0 success, 2 bad usage or bad input (one line on stderr), 1 internal failure.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "dist/comm.hpp"
#include "kernels/dispatch.hpp"
#include "recur/error.hpp"

namespace {

// Reports a failure. In a data-parallel job (mpirun) the other ranks may be waiting for this one
// in a collective, so the whole job ends here; ranks other than 0 report a moment later, so that
// an error every rank meets (a bad value) is reported once, by rank 0, whose abort ends them.
// The moment is 5 s: with 2 s, a loaded machine's rank 0 met the same error after rank 1 had
// waited out its 2 s, and both reported (MpiCli.TextRunBadValueOrMismatchedRanksEndTheJobWith
// OneMessage failed once in CI).
int fail(int code, const char* kind, const char* what) {
  if (recur::dist::size() == 1) {
    std::fprintf(stderr, "recur: %s: %s\n", kind, what);
    return code;
  }
  if (recur::dist::rank() == 0) {
    std::fprintf(stderr, "recur: %s: %s\n", kind, what);
  } else {
    std::this_thread::sleep_for(std::chrono::seconds(5));
    std::fprintf(stderr, "recur: %s (rank %d): %s\n", kind, recur::dist::rank(), what);
  }
  std::fflush(stderr);
  recur::dist::abort_job(code);
}

// The names of `app`'s subcommands, comma-separated.
std::string command_list(const CLI::App& app) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    names += (names.empty() ? "" : ", ") + sub->get_name();
  return names;
}

// The innermost subcommand the command line reached ("recur data fetch": fetch), or `app`.
const CLI::App& innermost(const CLI::App& app) {
  const CLI::App* at = &app;
  for (;;) {
    const auto parsed = at->get_subcommands();
    if (parsed.empty()) return *at;
    at = parsed.front();
  }
}

// The subcommands from the top down to `cmd` ("data fetch" for fetch; empty for the top).
std::string subcommand_path(const CLI::App& cmd) {
  std::string path;
  for (const CLI::App* at = &cmd; at->get_parent(); at = at->get_parent())
    path = at->get_name() + (path.empty() ? "" : " " + path);
  return path;
}

// A help text as a clause: "Checkpoint (.safetensors)" -> "checkpoint (.safetensors)".
std::string clause(std::string text) {
  if (text.size() > 1 && std::isupper(static_cast<unsigned char>(text[0])) &&
      std::islower(static_cast<unsigned char>(text[1])))
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

// CLI11's texts for what is missing or extra, said the way recur's own checks say it: a missing
// command ("A subcommand is required": which ones there are, or that the word given is none of
// them), a missing argument ("model is required": what it is), an option given without its value
// ("--epochs: 1 required INT missing"), an unknown option ("The following arguments were not
// expected: 3 --frob"). Anything else comes back unchanged.
std::string missing_text(const CLI::App& app, const std::string& what) {
  const CLI::App& cmd = innermost(app);
  const std::string sub = subcommand_path(cmd);
  const std::string path = sub.empty() ? "recur" : "recur " + sub;
  // "data: " for recur data, nothing at the top level (the line starts "recur: error: ").
  const std::string where = sub.empty() ? "" : sub + ": ";
  const std::string help = " (" + path + " --help)";
  // "--frob" or "--frob=3": no such option.
  const auto no_option = [&](const std::string& word) {
    return word.substr(0, word.find('=')) + ": no such option for " + path + help;
  };
  const auto is_option = [](const std::string& word) { return word.size() > 1 && word[0] == '-'; };
  if (what == "A subcommand is required") {
    const std::vector<std::string> rest = cmd.remaining();
    if (!rest.empty() && is_option(rest.front())) return no_option(rest.front());
    if (!rest.empty() && !rest.front().empty())
      return where + "unknown command '" + rest.front() + "' (commands: " + command_list(cmd) +
             "; " + path + " --help)";
    return where + "give a command: " + command_list(cmd) + help;
  }
  const std::string required = " is required";
  if (what.size() > required.size() &&
      what.compare(what.size() - required.size(), required.size(), required) == 0) {
    const std::string name = what.substr(0, what.size() - required.size());
    const CLI::Option* option = cmd.get_option_no_throw(name);
    if (!option) return what;
    const std::string about =
        option->get_description().empty() ? "" : ": " + clause(option->get_description());
    if (option->get_positional()) return where + "missing " + name + about + help;
    return name + ": required" + about + help;
  }
  const std::string extras = "The following arguments were not expected: ";
  const std::string extra = "The following argument was not expected: ";
  const bool many = what.rfind(extras, 0) == 0;
  if (many || what.rfind(extra, 0) == 0) {
    std::vector<std::string> words;
    std::size_t at = many ? extras.size() : extra.size();
    while (at < what.size()) {
      const std::size_t end = std::min(what.find(' ', at), what.size());
      if (end > at) words.push_back(what.substr(at, end - at));
      at = end + 1;
    }
    for (const std::string& w : words)
      if (is_option(w)) return no_option(w);
    if (!words.empty()) return where + "unexpected argument '" + words.front() + "'" + help;
    return what;
  }
  // "--epochs: 1 required INT missing"
  const std::string missing = " missing";
  const std::size_t colon = what.find(": ");
  if (colon != std::string::npos && what.size() > missing.size() &&
      what.compare(what.size() - missing.size(), missing.size(), missing) == 0 &&
      what.find(" required ", colon) != std::string::npos)
    return what.substr(0, colon) + ": needs a value";
  return what;
}

// CLI11 reports a value it cannot convert as "Could not convert: --steps = x"; this says it the
// way recur's own checks do, naming the option, what it takes and what it got ("--steps: must be
// an integer, got 'x'"), and an option given twice as such; what is missing or extra goes
// through missing_text. Other parse errors keep CLI11's text.
std::string parse_error_text(const CLI::App& app, const CLI::ParseError& e) {
  const std::string what = e.what(), prefix = "Could not convert: ";
  if (const std::string said = missing_text(app, what); said != what) return said;
  // An option given twice: "--steps: At Most 1 required but received 2".
  const std::string twice = ": At Most 1 required but received ";
  if (const std::size_t at = what.find(twice); at != std::string::npos)
    return what.substr(0, at) + ": given " + what.substr(at + twice.size()) +
           " times; give it once";
  const std::size_t eq = what.find(" = ");
  if (what.rfind(prefix, 0) != 0 || eq == std::string::npos) return what;
  const std::string name = what.substr(prefix.size(), eq - prefix.size());
  const std::string value = what.substr(eq + 3);
  const CLI::Option* option = nullptr;
  for (const CLI::App* sub : app.get_subcommands())
    if (!option) option = sub->get_option_no_throw(name);
  if (!option) option = app.get_option_no_throw(name);
  if (!option) return what;
  const std::string type = option->get_type_name();
  const bool list = option->get_items_expected_max() > 1 || option->get_delimiter() != '\0';
  std::string takes = "a valid value";
  if (type.find("UINT") != std::string::npos)
    takes = list ? "whole numbers >= 0 (such as 0,5,9)" : "a whole number >= 0";
  else if (type.find("INT") != std::string::npos)
    takes = list ? "integers (such as 0,5,9)" : "an integer";
  else if (type.find("FLOAT") != std::string::npos)
    takes = list ? "numbers" : "a number";
  return name + ": must be " + takes + ", got '" + value + "'";
}

}  // namespace

int main(int argc, char** argv) {
  // Blocks of 1 MiB and more (workspaces, data sets, checkpoints) come straight from the kernel
  // and go back to it when freed. glibc would otherwise raise this threshold after the first
  // such block is freed and serve later ones from heaps it never shrinks: IMDb training then
  // held about 90 MB more resident memory than it had allocated.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  recur::dist::Session dist_session(argc, argv);
  // A write past a file-size limit then fails with EFBIG (reported as an error) instead of
  // killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"recur: recurrent neural networks (RNN, LSTM, GRU) on the CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "recur 0.1.0");
  recur::cli::Runner run;
  recur::cli::add_data_command(app, run);
  recur::cli::add_train_command(app, run);
  recur::cli::add_pretrain_command(app, run);
  recur::cli::add_eval_command(app, run);
  recur::cli::add_predict_command(app, run);
  recur::cli::add_inspect_command(app, run);
  recur::cli::add_bench_command(app, run);
  recur::cli::add_report_command(app, run);
  recur::cli::add_export_command(app, run);
  recur::cli::add_serve_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Every rank of an MPI job parses the same command line: rank 0 reports for all.
    if (recur::dist::rank() == 0)
      std::fprintf(stderr, "recur: error: %s\n", parse_error_text(app, e).c_str());
    return 2;
  }
  try {
    // RECUR_ISA is read here, so that a bad value is reported before any work starts.
    recur::kernels::isa();
    return run ? run() : 0;
  } catch (const recur::Error& e) {
    return fail(2, "error", e.what());
  } catch (const std::exception& e) {
    return fail(1, "internal error", e.what());
  }
}
