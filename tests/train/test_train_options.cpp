// The option table (recur/train_options.hpp): every option reads back what it writes, a config
// round-trips, the command line's value wins over a file's, and bad text is refused naming the
// flag.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/train_options.hpp"

namespace recur {
namespace {

// A value other than the default for every option, as text.
std::string other_value(const TrainOption& o) {
  if (o.name == "data") return "some/folder";
  if (o.name == "out") return "runs/elsewhere";
  if (o.name == "test-data") return "tests.tsv";
  if (o.name == "model") return "embedding 8, gru 6 bidirectional, pool max, linear";
  if (o.name == "truncate") return "head";
  if (o.name == "view") return "permuted";
  if (o.name == "cell") return "gru";
  if (o.name == "pooling") return "mean";
  if (o.name == "init-recurrent") return "normal";
  if (o.name == "optimizer") return "rmsprop";
  if (o.name == "schedule") return "step";
  if (o.name == "precision") return "bf16";
  if (o.kind == TrainOption::Kind::text && o.name.find("bias-init") != std::string::npos)
    return "constant";
  if (o.kind == TrainOption::Kind::text && o.name.find("init") != std::string::npos)
    return "glorot";
  switch (o.kind) {
    case TrainOption::Kind::toggle:
      return "true";
    case TrainOption::Kind::real:
      return "0.375";
    default:
      return "7";
  }
}

TEST(TrainOptionTable, EveryOptionReadsBackWhatItWrites) {
  const TrainOptions defaults = default_train_options();
  std::set<std::string> names;
  for (const TrainOption& o : train_option_table()) {
    EXPECT_TRUE(names.insert(o.name).second) << "twice: " << o.name;
    EXPECT_FALSE(o.help.empty()) << o.name;
    TrainOptions changed = defaults;
    o.set(changed, other_value(o));
    EXPECT_NE(o.get(changed), o.get(defaults)) << o.name << " did not change";
    // get() is TOML: the same option set from its own config line gives the same options.
    TrainOptions back = defaults;
    std::set<std::string> given;
    apply_train_config_text(back, o.name + "=" + o.get(changed) + "\n", "t.toml", given);
    EXPECT_EQ(train_config_toml(back), train_config_toml(changed)) << o.name;
    EXPECT_EQ(given, std::set<std::string>{o.name});
  }
  EXPECT_EQ(find_train_option("hidden")->flag(), "--hidden");
  EXPECT_EQ(find_train_option("config"), nullptr);  // a front end's own, not a run's
}

TEST(TrainOptionTable, AWholeConfigRoundTrips) {
  TrainOptions o = default_train_options();
  for (const TrainOption& e : train_option_table()) e.set(o, other_value(e));
  const std::string toml = train_config_toml(o);
  TrainOptions back = default_train_options();
  std::set<std::string> given;
  apply_train_config_text(back, toml, "run/config.toml", given);
  EXPECT_EQ(train_config_toml(back), toml);
  EXPECT_EQ(given.size(), train_option_table().size());
  EXPECT_EQ(back.model.cell, CellKind::gru);
  EXPECT_FALSE(back.recurrent_init_auto);
  EXPECT_EQ(back.optimizer.lr, 0.375f);
  EXPECT_EQ(back.seed, 7u);
  EXPECT_EQ(back.layers.size(), 4u);
}

TEST(TrainOptionTable, GivenOptionsWinOverAFile) {
  TrainOptions o = default_train_options();
  find_train_option("hidden")->set(o, "32");
  std::set<std::string> given = {"hidden"};
  apply_train_config_text(o, "hidden = 64\nlayers = 2\nconfig = \"x.toml\"\n", "c.toml", given);
  EXPECT_EQ(o.model.hidden, 32);
  EXPECT_EQ(o.model.layers, 2);
  EXPECT_EQ(given, (std::set<std::string>{"hidden", "layers"}));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TrainOptionTable, BadTextIsRefusedNamingTheFlagOrFile) {
  TrainOptions o = default_train_options();
  std::set<std::string> given;
  EXPECT_EQ(error_of([&] { find_train_option("hidden")->set(o, "many"); }),
            "--hidden: must be an integer, got 'many'");
  EXPECT_EQ(error_of([&] { find_train_option("hidden")->set(o, "99999999999"); }),
            "--hidden: must be an integer in range, got '99999999999'");
  EXPECT_EQ(error_of([&] { find_train_option("seed")->set(o, "-1"); }),
            "--seed: must be 0 or more, got -1");
  EXPECT_EQ(error_of([&] { find_train_option("lr")->set(o, "fast"); }),
            "--lr: must be a number, got 'fast'");
  EXPECT_EQ(error_of([&] { find_train_option("untied")->set(o, "maybe"); }),
            "--untied: is a switch: true or false, got 'maybe'");
  EXPECT_NE(error_of([&] { find_train_option("cell")->set(o, "cnn"); }).find("--cell: unknown"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { apply_train_config_text(o, "hiden = 3\n", "c.toml", given); }),
            "c.toml: unknown option 'hiden' (see recur train --help)");
  EXPECT_EQ(error_of([&] { apply_train_config_text(o, "hidden = [3]\n", "c.toml", given); }),
            "c.toml: option 'hidden' must be a string, number or boolean");
  EXPECT_EQ(error_of([&] { apply_train_config_text(o, "hidden = 0.5\n", "c.toml", given); }),
            "c.toml: option 'hidden': --hidden: must be an integer, got '0.5'");
  EXPECT_NE(error_of([&] {
              apply_train_config_text(o, "hidden = \n", "c.toml", given);
            }).find("c.toml: not valid TOML: line 1"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { resolve_train_options(o, given, "a.toml", "runs/x"); }),
            "--resume: takes the run's own config.toml; do not give --config too");
  EXPECT_NE(error_of([&] {
              resolve_train_options(o, given, "", "no/such/run");
            }).find("--resume: no/such/run/config.toml does not exist"),
            std::string::npos);
}

TEST(TrainOptionTable, TextRecipeFillsWhatWasNotGiven) {
  TrainOptions o = default_train_options();
  std::set<std::string> given = {"batch"};
  o.batch = 8;
  apply_sequence_defaults(o, given);
  EXPECT_EQ(o.batch, 8);
  EXPECT_EQ(o.epochs, 4);
  EXPECT_EQ(o.model.pooling, Pooling::max);
  EXPECT_TRUE(o.model.bidirectional);
  EXPECT_EQ(o.optimizer.lr, 0.002f);
  EXPECT_EQ(o.validation, 0);
  // A layer list says how it pools and reads: those two stay as they are.
  TrainOptions listed = default_train_options();
  find_train_option("model")->set(listed, "embedding 8, lstm 4, pool last, linear");
  apply_sequence_defaults(listed, {});
  EXPECT_EQ(listed.model.pooling, Pooling::last);
  EXPECT_FALSE(listed.model.bidirectional);
  EXPECT_EQ(listed.epochs, 4);
  // Text drops the images' augmentation and weight averaging unless they were asked for.
  EXPECT_EQ(o.augment_shift, 0);
  EXPECT_EQ(o.augment_rotate, 0);
  EXPECT_EQ(o.optimizer.ema, 0.f);
}

// examples/imdb-bilstm-wide.toml is what bare `recur train --data imdb` trains, option for
// option; examples/imdb-bilstm.toml (the recipe at the size of the report's CNN) differs from it
// only in the embedding, the width and label smoothing. Arrays keep 128 units and no smoothing,
// and a layer list its own widths.
TEST(TrainOptionTable, TheImdbExampleConfigsAreTheRecipeAndItsNarrowForm) {
  const auto resolved = [](const std::string& config, const std::string& data = "imdb") {
    TrainOptions o = default_train_options();
    std::set<std::string> given;
    if (!config.empty())
      apply_train_config_file(o, std::string(RECUR_SOURCE_DIR) + "/examples/" + config, given);
    o.data_dir = data;  // `--data imdb`, as the configs say
    return resolve_train_options(o, given, "", "");
  };
  TrainOptions bare = resolved("");
  // The configs spell out what `auto` picks for an LSTM.
  find_train_option("init-recurrent")->set(bare, "orthogonal");
  const TrainOptions wide = resolved("imdb-bilstm-wide.toml"),
                     narrow = resolved("imdb-bilstm.toml");
  EXPECT_EQ(train_config_toml(wide), train_config_toml(bare));
  EXPECT_EQ(wide.embed, 512);
  EXPECT_EQ(wide.model.hidden, 256);
  EXPECT_EQ(wide.epochs, 4);
  EXPECT_EQ(wide.label_smoothing, 0.1);
  EXPECT_EQ(narrow.embed, 128);
  EXPECT_EQ(narrow.model.hidden, 128);
  EXPECT_EQ(narrow.label_smoothing, 0.0);
  TrainOptions widened = narrow;
  widened.embed = wide.embed;
  widened.model.hidden = wide.model.hidden;
  widened.label_smoothing = wide.label_smoothing;
  EXPECT_EQ(train_config_toml(widened), train_config_toml(wide));

  // A folder of .npy arrays: the recipe without the text's widths and smoothing.
  const std::filesystem::path arrays =
      std::filesystem::temp_directory_path() / ("recur-npy-defaults-" + std::to_string(::getpid()));
  std::filesystem::create_directories(arrays);
  std::ofstream(arrays / "x_train.npy") << "";
  const TrainOptions npy = resolved("", arrays.string());
  std::filesystem::remove_all(arrays);
  EXPECT_EQ(npy.model.hidden, 128);
  EXPECT_EQ(npy.label_smoothing, 0.0);
  EXPECT_TRUE(npy.model.bidirectional);
  // A layer list keeps its own widths (the flags would be refused beside it).
  TrainOptions listed = default_train_options();
  listed.layers = parse_layer_list("embedding 32, lstm 16, pool max, linear", "test");
  listed.data_dir = "imdb";
  std::set<std::string> none;
  apply_sequence_defaults(listed, none);
  EXPECT_EQ(listed.embed, default_train_options().embed);
  EXPECT_EQ(listed.model.hidden, default_train_options().model.hidden);
  EXPECT_EQ(listed.label_smoothing, 0.1);
}

TEST(TrainOptionTable, ThePlainRnnRecipeFillsWhatWasNotGiven) {
  TrainOptions o = default_train_options();
  EXPECT_EQ(o.augment_shift, 2);  // the images' recipe
  EXPECT_EQ(o.optimizer.ema, 0.999f);
  o.model.cell = CellKind::rnn_tanh;
  apply_cell_defaults(o, {});
  EXPECT_EQ(o.optimizer.lr, 0.002f);
  EXPECT_EQ(o.epochs, 15);
  TrainOptions given = default_train_options();
  given.model.cell = CellKind::rnn_relu;
  given.epochs = 3;
  apply_cell_defaults(given, {"epochs"});
  EXPECT_EQ(given.epochs, 3);
  EXPECT_EQ(given.optimizer.lr, 0.002f);
  // LSTM, GRU and layer lists keep the defaults.
  TrainOptions lstm = default_train_options();
  apply_cell_defaults(lstm, {});
  EXPECT_EQ(lstm.optimizer.lr, 0.004f);
  EXPECT_EQ(lstm.epochs, 10);
  TrainOptions listed = default_train_options();
  listed.model.cell = CellKind::rnn_tanh;
  find_train_option("model")->set(listed, "rnn 8, pool last, linear");
  apply_cell_defaults(listed, {});
  EXPECT_EQ(listed.epochs, 10);
}

}  // namespace
}  // namespace recur
