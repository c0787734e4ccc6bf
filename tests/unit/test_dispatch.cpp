// The run-time choice of instruction set (kernels/dispatch.hpp) and RECUR_ISA.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "kernels/dispatch.hpp"
#include "recur/error.hpp"
#include "support/cpuinfo.hpp"

namespace {

using recur::Error;
using recur::kernels::best_isa;
using recur::kernels::choose_isa;
using recur::kernels::Isa;

TEST(Dispatch, TheBestLevelIsWhatTheCpuReports) {
  const Isa want = recur::test::cpuinfo_has("avx512f") ? Isa::avx512
                   : recur::test::cpuinfo_has("avx2")  ? Isa::avx2
                                                       : Isa::portable;
  EXPECT_EQ(best_isa(), want);
}

TEST(Dispatch, RecurIsaMayOnlyLowerTheLevel) {
  EXPECT_EQ(choose_isa("", Isa::avx512), Isa::avx512);
  EXPECT_EQ(choose_isa("portable", Isa::avx512), Isa::portable);
  EXPECT_EQ(choose_isa("avx2", Isa::avx512), Isa::avx2);
  EXPECT_EQ(choose_isa("avx2", Isa::avx2), Isa::avx2);
  EXPECT_EQ(choose_isa("portable", Isa::portable), Isa::portable);
  try {
    choose_isa("avx512", Isa::avx2);
    FAIL() << "a level above the CPU's was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "RECUR_ISA");
    EXPECT_NE(std::string(e.what()).find("lacks avx512"), std::string::npos) << e.what();
  }
  try {
    choose_isa("sse9", Isa::avx512);
    FAIL() << "an unknown level was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown instruction set 'sse9'"), std::string::npos);
  }
}

TEST(Dispatch, TheProcessRunsAtTheLevelTheEnvironmentAsks) {
  const char* env = std::getenv("RECUR_ISA");
  EXPECT_EQ(recur::kernels::isa(), choose_isa(env ? env : "", best_isa()));
}

}  // namespace
