// The --text part of `recur report`: on IMDb (or any text data load_text_splits reads), a
// bidirectional LSTM trained by `recur train --data PATH` itself (its default recipe, in a child
// process) against a 1-D CNN over embeddings (embedding, conv1d, relu, max over the real steps,
// linear) trained by `recur report --train-one imdb-cnn` (a child process) through the same text
// pipeline (vocabulary, encoding, checkpoint metadata). Both are measured like the image models
// (recur/report_runner.hpp) and added to the report as the group "IMDb" (or "Text").
#pragma once

#include <iosfwd>
#include <string>

#include "recur/report.hpp"
#include "recur/report_runner.hpp"

namespace recur {

// True for the names of the text models ("imdb-bilstm", "imdb-cnn").
bool is_text_report_model(const std::string& name);

// Throws Error("--text", ...) (data/imdb missing: names `recur data fetch imdb`) or
// Error("--text-data", ...) (not text data) before anything is written.
void check_text_report_data(const ReportRunOptions& options);

// The child's part for the CNN: trains it into OUT/runs/imdb-cnn (emptied first).
void train_text_report_model(const ReportRunOptions& options, const std::string& name,
                             std::ostream& out);

// Trains (in child processes) or reuses both text models, measures them and appends them to
// `report` (and a line about the text data to report.data).
void add_text_report_models(const ReportRunOptions& options, Report& report, std::ostream& out);

}  // namespace recur
