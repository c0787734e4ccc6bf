// Calls into the installed library: a split, a view, a batcher and a hash.
#include <cstdio>
#include <vector>

#include <recur/data.hpp>
#include <recur/error.hpp>
#include <recur/sha256.hpp>

int main() {
  const recur::Split split = recur::split_train_validation(60000, 5000);
  const recur::SequenceView view = recur::SequenceView::make(recur::parse_view("rows"), 28, 28);
  recur::Batcher batcher(split.train, 64, 1);
  std::printf("split train=%zu validation=%zu\n", split.train.size(), split.validation.size());
  std::printf("view %s steps=%d features=%d\n", recur::to_string(view.kind).c_str(), view.steps(),
              view.features());
  std::printf("batches=%lld\n", static_cast<long long>(batcher.batches_per_epoch()));
  std::printf("sha256(abc)=%s\n", recur::sha256_hex("abc", 3).c_str());
  try {
    recur::parse_view("nope");
  } catch (const recur::Error& e) {
    std::printf("error subject=%s\n", e.subject().c_str());
  }
  return 0;
}
