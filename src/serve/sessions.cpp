// Streaming sessions (sessions.hpp).
#include "serve/sessions.hpp"

#include <fmt/core.h>

namespace recur::serve {

SessionTable::SessionTable(const Predictor& predictor, SessionOptions options, BatchOptions batch,
                           StepBatcher::BatchObserver observer)
    : predictor_(predictor),
      options_(options),
      batcher_(predictor, batch, std::move(observer), [this] { return open_.load(); }) {}

void SessionTable::drop_idle(std::chrono::steady_clock::time_point now) {
  const auto idle = std::chrono::duration<double>(options_.idle_s);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second->used > idle) {
      it = sessions_.erase(it);
      open_ = sessions_.size();
      ++expired_;
    } else {
      ++it;
    }
  }
}

std::size_t SessionTable::live() {
  std::lock_guard<std::mutex> lock(mutex_);
  drop_idle(std::chrono::steady_clock::now());
  return sessions_.size();
}

std::shared_ptr<SessionTable::Session> SessionTable::find_or_start(const SequenceParams& seq) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  drop_idle(now);
  auto it = sessions_.find(seq.id);
  if (seq.start) {
    // A new start restarts a sequence of that id (as Triton does).
    if (it == sessions_.end() &&
        sessions_.size() >= static_cast<std::size_t>(options_.max_sessions))
      throw BadRequest(429, "parameters.sequence_start",
                       fmt::format("{} sessions are open, the most this server keeps "
                                   "(--max-sessions); end one with sequence_end or retry later",
                                   sessions_.size()));
    auto s = std::make_shared<Session>();
    s->state = predictor_.start();
    s->used = now;
    sessions_[seq.id] = s;
    open_ = sessions_.size();
    return s;
  }
  if (it == sessions_.end())
    throw BadRequest(400, "parameters.sequence_id",
                     "sequence " + seq.id +
                         " is not open (never started, ended, or idle past --session-idle-s); "
                         "start it with sequence_start: true");
  it->second->used = now;
  return it->second;
}

Predictions SessionTable::feed(const InferRequest& r, std::int64_t& steps_read) {
  const std::shared_ptr<Session> s = find_or_start(r.sequence);
  StreamReading reading;
  {
    std::lock_guard<std::mutex> lock(s->mutex);
    if (s->ended)
      throw BadRequest(400, "parameters.sequence_id", "sequence " + r.sequence.id + " has ended");
    StreamFeed f;
    f.state = &s->state;
    f.k = r.steps;
    std::vector<std::int32_t> ids;
    switch (r.payload) {
      case Payload::steps_u8:
        f.pixels = r.u8.data();
        break;
      case Payload::steps_f32:
        f.x = r.f32.data();
        break;
      case Payload::tokens:
        f.ids = r.ids.data();
        break;
      case Payload::texts:
        // A piece of text: its words (none when it holds only a space) are the next steps.
        ids = predictor_.text_tokens(r.texts.front());
        f.ids = ids.data();
        f.k = static_cast<int>(ids.size());
        if (f.k == 0 && s->state.steps == 0)
          throw BadRequest(400, "inputs[0].data", "the text holds no word yet: nothing to read");
        break;
      case Payload::images:
        throw BadRequest(400, "inputs[0].shape", "a stream takes steps [1, k, features]");
    }
    if (f.k > 0) batcher_.feed(f);
    reading = predictor_.read(s->state);
    steps_read = s->state.steps;
    if (r.sequence.end) s->ended = true;
  }
  if (r.sequence.end) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = sessions_.find(r.sequence.id);
    if (it != sessions_.end() && it->second == s) sessions_.erase(it);
    open_ = sessions_.size();
  }
  Predictions p;
  p.count = 1;
  p.classes = static_cast<int>(reading.logits.size());
  p.labels = {reading.label};
  p.probabilities = std::move(reading.probabilities);
  p.logits = std::move(reading.logits);
  return p;
}

}  // namespace recur::serve
