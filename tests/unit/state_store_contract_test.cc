// The StateStore contract (core/state_store.h), run against both implementations: the fake the
// engine's unit tests use and the real SQLite store (issue 18, "the same contract suites run
// against the fakes and the real StateStore"). A difference between them would make the
// engine's tests on fakes prove less than they seem to.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "core/state_store.h"
#include "fakes/fakes.h"
#include "state/sqlite_state.h"

namespace ds {
namespace {

struct FakeStore {
  static std::unique_ptr<StateStore> Make(const std::string&) {
    return std::make_unique<fakes::FakeStateStore>();
  }
};
struct SqliteStore {
  static std::unique_ptr<StateStore> Make(const std::string& dir) {
    Result<std::unique_ptr<SqliteState>> s = SqliteState::Open(dir + "/state.db");
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::unique_ptr<StateStore>(std::move(s).value()) : nullptr;
  }
};

template <typename Impl>
class StateStoreContract : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ds-contract-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store_ = Impl::Make(dir_);
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static FetchJob Job(const std::string& key, const std::string& seq = "", int64_t at = 0) {
    FetchJob j;
    j.bucket = "b";
    j.key = key;
    j.seq = seq;
    j.ordered = !seq.empty();
    j.not_before_ms = at;
    return j;
  }
  Status Enqueue(const FetchJob& j) {
    return store_->Transact([&](StateTxn& t) { return t.Enqueue(j); });
  }

  std::string dir_;
  std::unique_ptr<StateStore> store_;
};

using Implementations = ::testing::Types<FakeStore, SqliteStore>;
class Names {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, FakeStore> ? "Fake" : "Sqlite";
  }
};
TYPED_TEST_SUITE(StateStoreContract, Implementations, Names);

TYPED_TEST(StateStoreContract, UnseenKeysAreDefaultPutsAreReadBackAndFailuresRollBack) {
  StateStore& s = *this->store_;
  Result<KeyState> unseen = s.Lookup("b", "k");
  ASSERT_TRUE(unseen.ok());
  EXPECT_FALSE(unseen->present);
  EXPECT_EQ(unseen->removal_gen, 0);
  KeyState st;
  st.seq = "0A";
  st.present = true;
  st.etag = "e";
  st.size = 7;
  st.updated_ms = 5;
  ASSERT_TRUE(s.Transact([&](StateTxn& t) { return t.Put("b", "k", st); }).ok());
  Result<KeyState> got = s.Lookup("b", "k");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->seq, "0A");
  EXPECT_TRUE(got->present);
  EXPECT_EQ(got->size, 7);

  KeyState other = st;
  other.seq = "0B";
  Status failed = s.Transact([&](StateTxn& t) -> Status {
    DS_RETURN_IF_ERROR(t.Put("b", "k", other));
    DS_RETURN_IF_ERROR(t.Enqueue(TestFixture::Job("k")));
    return Status::Internal("the caller gives up");
  });
  EXPECT_EQ(failed.code(), Code::kInternal);
  EXPECT_EQ(s.Lookup("b", "k")->seq, "0A");
  EXPECT_EQ(s.JobCounts()->first, 0);
}

TYPED_TEST(StateStoreContract, UnclaimedJobsOfAKeyMergeAndClaimedOnesAreNotHandedOutTwice) {
  StateStore& s = *this->store_;
  ASSERT_TRUE(this->Enqueue(TestFixture::Job("k", "0A")).ok());
  ASSERT_TRUE(this->Enqueue(TestFixture::Job("k", "0C")).ok());
  ASSERT_TRUE(this->Enqueue(TestFixture::Job("k", "0B")).ok());
  ASSERT_TRUE(this->Enqueue(TestFixture::Job("other")).ok());
  EXPECT_EQ(s.JobCounts()->first, 2);
  Result<std::vector<FetchJob>> jobs = s.ClaimJobs(0, 10);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 2u);
  for (const FetchJob& j : *jobs) {
    if (j.key == "k") {
      EXPECT_EQ(j.seq, "0C");  // the higher sequencer is kept
    }
  }
  EXPECT_TRUE(s.ClaimJobs(0, 10)->empty());
  EXPECT_EQ(s.JobOf("b", "k").value(), StateStore::JobPresence::kWaiting);
  // A new event for a claimed key gets a job of its own.
  ASSERT_TRUE(this->Enqueue(TestFixture::Job("k", "0D")).ok());
  EXPECT_EQ(s.ClaimJobs(0, 10)->size(), 1u);
  for (const FetchJob& j : *jobs) ASSERT_TRUE(s.FinishJob(j.id).ok());
  EXPECT_EQ(s.JobOf("b", "other").value(), StateStore::JobPresence::kNone);
}

TYPED_TEST(StateStoreContract, ARetriedJobIsDueAtItsTimeAndAFailedOneWaitsForRetryFailed) {
  StateStore& s = *this->store_;
  ASSERT_TRUE(this->Enqueue(TestFixture::Job("k")).ok());
  Result<std::vector<FetchJob>> jobs = s.ClaimJobs(100, 10);
  ASSERT_TRUE(jobs.ok());
  ASSERT_EQ(jobs->size(), 1u);
  const int64_t id = (*jobs)[0].id;
  ASSERT_TRUE(s.RetryJob(id, 5000, "503 from the store", 100).ok());
  EXPECT_TRUE(s.ClaimJobs(4999, 10)->empty());
  jobs = s.ClaimJobs(5000, 10);
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].last_error, "503 from the store");
  EXPECT_EQ((*jobs)[0].first_error_ms, 100);

  ASSERT_TRUE(s.FailJob(id, "gave up").ok());
  EXPECT_EQ(s.JobCounts().value(), std::make_pair(int64_t{0}, int64_t{1}));
  EXPECT_EQ(s.JobOf("b", "k").value(), StateStore::JobPresence::kFailed);
  EXPECT_TRUE(s.ClaimJobs(1'000'000, 10)->empty());
  EXPECT_EQ(s.RetryFailed(6000).value(), 1);
  jobs = s.ClaimJobs(6000, 10);
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ((*jobs)[0].first_error_ms, 0);  // forgotten
}

TYPED_TEST(StateStoreContract, AClaimWhoseLeaseEndedIsClaimedAgainAndARenewalExtendsIt) {
  StateStore& s = *this->store_;
  const int64_t lease = s.claim_lease_ms();
  ASSERT_TRUE(this->Enqueue(TestFixture::Job("k")).ok());
  ASSERT_EQ(s.ClaimJobs(0, 10)->size(), 1u);
  EXPECT_TRUE(s.ClaimJobs(lease - 1, 10)->empty());
  Result<std::vector<FetchJob>> again = s.ClaimJobs(lease + 1, 10);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 1u);
  // Renewed at lease + 1: held until 2 * lease + 1.
  ASSERT_TRUE(s.RenewClaim((*again)[0].id, lease + 1).ok());
  EXPECT_TRUE(s.ClaimJobs(2 * lease, 10)->empty());
  EXPECT_EQ(s.ClaimJobs(2 * lease + 2, 10)->size(), 1u);
}

TYPED_TEST(StateStoreContract, TheSubjectIndexListsKeysInByteOrderUntilUnindexed) {
  StateStore& s = *this->store_;
  for (const char* k : {"p/b", "p/a", "p/\xc3\xa9", "p/B"}) {
    ASSERT_TRUE(s.IndexSubject("alice", "b", k).ok());
  }
  ASSERT_TRUE(s.IndexSubject("alice", "other-bucket", "x").ok());
  ASSERT_TRUE(s.IndexSubject("bob", "b", "p/bob").ok());
  EXPECT_EQ(s.SubjectKeys("alice", "b").value(),
            (std::vector<std::string>{"p/B", "p/a", "p/b", "p/\xc3\xa9"}));
  ASSERT_TRUE(s.UnindexKey("b", "p/a").ok());
  EXPECT_EQ(s.SubjectKeys("alice", "b").value(),
            (std::vector<std::string>{"p/B", "p/b", "p/\xc3\xa9"}));
  EXPECT_TRUE(s.SubjectKeys("carol", "b")->empty());
}

TYPED_TEST(StateStoreContract, CollectionForgetsOldKeysWithoutACopyUnlessTheyHaveAJob) {
  StateStore& s = *this->store_;
  auto put = [&](const std::string& key, bool present, int64_t updated) {
    KeyState st;
    st.present = present;
    st.removal_gen = 1;
    st.updated_ms = updated;
    return s.Transact([&](StateTxn& t) { return t.Put("b", key, st); });
  };
  ASSERT_TRUE(put("old-tombstone", false, 10).ok());
  ASSERT_TRUE(put("old-present", true, 10).ok());
  ASSERT_TRUE(put("new-tombstone", false, 500).ok());
  ASSERT_TRUE(put("old-with-job", false, 10).ok());
  ASSERT_TRUE(this->Enqueue(TestFixture::Job("old-with-job")).ok());
  Result<CollectStats> c = s.CollectExpired(100, 1);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->keys, 1);
  EXPECT_EQ(s.Lookup("b", "old-tombstone")->removal_gen, 0);  // as if never seen
  EXPECT_EQ(s.Lookup("b", "old-present")->removal_gen, 1);
  EXPECT_EQ(s.Lookup("b", "new-tombstone")->removal_gen, 1);
  EXPECT_EQ(s.Lookup("b", "old-with-job")->removal_gen, 1);
}

}  // namespace
}  // namespace ds
