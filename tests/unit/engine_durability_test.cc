// What the engine acknowledges is committed durably (issue 18, "the fake records durability"):
// a removal and a journaled creation are answered only after a kDurable commit of their state;
// a publication's bookkeeping may be kRelaxed (lost on power loss only, and redone: the job
// stays in the journal until then). FakeStateStore records each key's last commit durability.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/documents.h"
#include "fakes/engine_on_fakes.h"

namespace ds {
namespace {

class EngineDurabilityTest : public fakes::EngineOnFakesTest {
 protected:
  Settlement ApplyOne(const std::string& event_name, const std::string& key) {
    const std::string doc = Doc(event_name, key);
    std::vector<DocumentResult> r = ApplyDocuments(*engine_, {std::string_view(doc)});
    return r.at(0).settlement;
  }
};

TEST_F(EngineDurabilityTest, AcknowledgedRemovalsAndCreationsAreCommittedDurably) {
  store_.Put("b", "k", "body");
  ASSERT_EQ(ApplyOne("ObjectCreated:Put", "k"), Settlement::kDurable);
  EXPECT_EQ(state_.CommitDurability("b", "k"), Durability::kDurable);

  ASSERT_EQ(engine_->DrainJobs(), 1u);
  ASSERT_TRUE(cache_.Has("k"));
  EXPECT_EQ(state_.CommitDurability("b", "k"), Durability::kRelaxed);

  store_.Delete("b", "k");
  ASSERT_EQ(ApplyOne("ObjectRemoved:Delete", "k"), Settlement::kDurable);
  EXPECT_FALSE(cache_.Has("k"));
  EXPECT_EQ(state_.CommitDurability("b", "k"), Durability::kDurable);
}

}  // namespace
}  // namespace ds
