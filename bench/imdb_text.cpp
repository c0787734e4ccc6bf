// The text pipeline on the whole IMDb set (data/imdb, `recur data fetch imdb`): reading the
// 50,000 reviews of reviews.json, building the 20,000-token vocabulary, encoding every review.
// Each is timed once per iteration (seconds); about 1.4 s for read + vocabulary on the project's
// 2-core machine. Skipped with an error line when IMDb has not been fetched.
//
//   build/bench/recur_bench --benchmark_filter=Imdb
#include <benchmark/benchmark.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "recur/text.hpp"

namespace {

const std::string kReviews = std::string(RECUR_SOURCE_DIR) + "/data/imdb/reviews.json";

bool have_imdb(benchmark::State& state) {
  if (std::filesystem::is_regular_file(kReviews)) return true;
  state.SkipWithError(("no " + kReviews + " (recur data fetch imdb)").c_str());
  return false;
}

void BM_ImdbReadReviews(benchmark::State& state) {
  if (!have_imdb(state)) return;
  for (auto _ : state) benchmark::DoNotOptimize(recur::read_reviews_json(kReviews));
}

void BM_ImdbBuildVocabulary(benchmark::State& state) {
  if (!have_imdb(state)) return;
  const recur::TextSet all = recur::read_reviews_json(kReviews);
  for (auto _ : state) benchmark::DoNotOptimize(recur::Vocabulary::build(all.texts, 20000, 1));
}

void BM_ImdbEncodeAll(benchmark::State& state) {
  if (!have_imdb(state)) return;
  const recur::TextSet all = recur::read_reviews_json(kReviews);
  const recur::Vocabulary v = recur::Vocabulary::build(all.texts, 20000, 1);
  std::int64_t tokens = 0;
  for (auto _ : state) {
    tokens = 0;
    for (const auto& t : all.texts)
      tokens += static_cast<std::int64_t>(v.encode(t, 1 << 20, recur::Truncate::head).size());
  }
  state.counters["tokens"] = static_cast<double>(tokens);
}

}  // namespace

BENCHMARK(BM_ImdbReadReviews)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_ImdbBuildVocabulary)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_ImdbEncodeAll)->Unit(benchmark::kSecond)->Iterations(1);
