// The loader: a deterministic uniform shuffle, rank slices that partition every global batch, global batches
// independent of the number of ranks, exact resumption from a saved cursor, prefetching threads that change
// nothing, augmentation hooks, and errors.
#include <map>
#include <set>

#include "data/loader.h"
#include "data/resize.h"
#include "framework/core/generator.h"
#include "framework/core/philox.h"
#include "tests/common/test_util.h"
#include "tests/data/data_test_util.h"

using namespace iris;
using namespace iris::data;
using namespace iris::test;

namespace {

// n samples of 4x4 grey images whose pixel (0, 0) is the sample's index (so rows can be identified), with
// labels index % 10 and a 2x2 low-res image.
ShardSet make_set(const TempDir& dir, int n) {
  ShardSpec spec;
  spec.height = spec.width = 4;
  spec.channels = 1;
  spec.lowres_sizes = {2};
  spec.has_labels = true;
  ShardWriter w(dir.path().string(), spec, {.samples_per_shard = 7});
  for (int i = 0; i < n; ++i) {
    Image im = pattern_image(4, 4, 1, i);
    im.at(0, 0) = static_cast<uint8_t>(i);
    w.add(im, i % 10);
  }
  w.finish();
  return ShardSet::open(dir.path().string());
}

LoaderOptions options(int64_t batch, int rank, int world, int workers = 2) {
  LoaderOptions o;
  o.batch_size = batch;
  o.rank = rank;
  o.world_size = world;
  o.seed = 1234;
  o.num_workers = workers;
  return o;
}

// The indices of `steps` consecutive batches of one rank, checking each batch's tensors against the set.
std::vector<std::vector<int64_t>> run(Loader& loader, int steps, const ShardSet& set) {
  std::vector<std::vector<int64_t>> out;
  for (int s = 0; s < steps; ++s) {
    const Batch b = loader.next();
    const auto hr = b.hr.to_vector<float>();
    const int64_t per = 16;
    REQUIRE(b.hr.shape() == Shape{b.rows(), 4, 4, 1});
    REQUIRE(b.lowres.size() == 1);
    REQUIRE(b.lowres[0].shape() == Shape{b.rows(), 2, 2, 1});
    for (int64_t r = 0; r < b.rows(); ++r) {
      // Row r holds the sample the batch says it does.
      CHECK(hr[static_cast<size_t>(r * per)] == static_cast<float>(b.indices[r]) / 127.5f - 1.0f);
      CHECK(b.labels.to_vector<int32_t>()[r] == b.indices[r] % 10);
    }
    if (b.rows() > 0)
      CHECK(float_to_u8(b.lowres[0].select(0, 0)).to_vector<uint8_t>() == set.lowres(b.indices[0], 2).pixels);
    out.push_back(b.indices);
  }
  return out;
}

}  // namespace

TEST_CASE("epoch orders are deterministic permutations, uniform over orderings") {
  const auto a = epoch_order(1000, 5, 3);
  CHECK(a == epoch_order(1000, 5, 3));
  CHECK(a != epoch_order(1000, 5, 4));
  CHECK(a != epoch_order(1000, 6, 3));
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) CHECK(sorted[static_cast<size_t>(i)] == i);
  const auto id = epoch_order(5, 5, 0, false);
  CHECK(id == std::vector<int64_t>{0, 1, 2, 3, 4});
  // All 6 orderings of 3 elements are equally likely: 6000 epochs, expect 1000 each (sd ~ 29).
  std::map<std::vector<int64_t>, int> counts;
  for (int e = 0; e < 6000; ++e) ++counts[epoch_order(3, 77, e)];
  CHECK(counts.size() == 6);
  for (const auto& [perm, c] : counts) CHECK(std::abs(c - 1000) < 150);
}

TEST_CASE("rank slices partition each global batch, identically for 1, 2 and 3 ranks") {
  TempDir dir("loader-ranks");
  const ShardSet set = make_set(dir, 30);
  const int64_t B = 6;
  const int steps = 2 * 5;  // two epochs of 30 / 6
  std::vector<std::vector<int64_t>> global_by_world[4];
  for (int world : {1, 2, 3}) {
    std::vector<std::vector<std::vector<int64_t>>> per_rank;
    for (int r = 0; r < world; ++r) {
      Loader loader(set, options(B, r, world));
      CHECK(loader.steps_per_epoch() == 5);
      CHECK(loader.local_batch_size() == B / world);
      per_rank.push_back(run(loader, steps, set));
    }
    for (int s = 0; s < steps; ++s) {
      std::vector<int64_t> global;
      for (int r = 0; r < world; ++r) {
        CHECK(static_cast<int64_t>(per_rank[r][s].size()) == B / world);
        global.insert(global.end(), per_rank[r][s].begin(), per_rank[r][s].end());
      }
      global_by_world[world].push_back(global);
    }
    // Every sample exactly once per epoch (so the rank slices are disjoint).
    for (int epoch = 0; epoch < 2; ++epoch) {
      std::multiset<int64_t> seen;
      for (int s = epoch * 5; s < epoch * 5 + 5; ++s)
        seen.insert(global_by_world[world][s].begin(), global_by_world[world][s].end());
      CHECK(seen.size() == 30);
      for (int64_t i = 0; i < 30; ++i) CHECK(seen.count(i) == 1);
    }
  }
  CHECK(global_by_world[2] == global_by_world[1]);
  CHECK(global_by_world[3] == global_by_world[1]);
  CHECK(global_by_world[1][0] != global_by_world[1][5]);  // epochs are shuffled differently
}

TEST_CASE("a restored cursor reproduces the exact sequence") {
  TempDir dir("loader-resume");
  const ShardSet set = make_set(dir, 30);
  Loader straight(set, options(6, 1, 2));
  const auto want = run(straight, 13, set);  // 2.6 epochs
  for (int stop_after : {0, 3, 5, 7}) {
    CAPTURE(stop_after);
    LoaderCursor saved;
    {
      Loader first(set, options(6, 1, 2));
      const auto head = run(first, stop_after, set);
      saved = first.cursor();
      for (int s = 0; s < stop_after; ++s) CHECK(head[s] == want[s]);
      (void)first.next();  // prefetched and consumed batches beyond the cursor do not matter
    }
    CHECK(saved == LoaderCursor{stop_after / 5, (stop_after % 5) * 6});
    Loader resumed(set, options(6, 1, 2));
    resumed.restore(saved);
    const auto tail = run(resumed, 13 - stop_after, set);
    for (int s = stop_after; s < 13; ++s) CHECK(tail[s - stop_after] == want[s]);
  }
  // Restoring inside one loader, after batches were prefetched, also works.
  Loader again(set, options(6, 1, 2));
  (void)run(again, 4, set);
  again.restore({1, 12});
  CHECK(run(again, 2, set) == std::vector<std::vector<int64_t>>{want[7], want[8]});
  // A batch's `next` cursor is where the following batch starts.
  Loader c(set, options(6, 0, 1, 0));
  for (int s = 0; s < 6; ++s) {
    const LoaderCursor after = c.next().next;
    CHECK(after == c.cursor());
  }
  CHECK(c.cursor() == LoaderCursor{1, 6});
  check_throws_with([&] { again.restore({0, 5}); }, {"restore", "position 5", "global batches of 6"});
  check_throws_with([&] { again.restore({0, 36}); }, {"restore", "position 36"});
}

TEST_CASE("resuming with another number of ranks continues the same global sequence") {
  TempDir dir("loader-reshard");
  const ShardSet set = make_set(dir, 30);
  Loader one(set, options(6, 0, 1));
  const auto want = run(one, 8, set);
  Loader head(set, options(6, 0, 1));
  (void)run(head, 3, set);
  const LoaderCursor saved = head.cursor();
  std::vector<std::vector<std::vector<int64_t>>> parts;
  for (int r = 0; r < 3; ++r) {
    Loader l(set, options(6, r, 3));
    l.restore(saved);
    parts.push_back(run(l, 5, set));
  }
  for (int s = 0; s < 5; ++s) {
    std::vector<int64_t> global;
    for (int r = 0; r < 3; ++r) global.insert(global.end(), parts[r][s].begin(), parts[r][s].end());
    CHECK(global == want[3 + s]);
  }
}

TEST_CASE("prefetching threads change nothing") {
  TempDir dir("loader-threads");
  const ShardSet set = make_set(dir, 30);
  Loader sync(set, options(6, 0, 1, 0));
  Loader async(set, options(6, 0, 1, 4));
  for (int s = 0; s < 12; ++s) {
    const Batch a = sync.next(), b = async.next();
    CHECK(a.indices == b.indices);
    CHECK(a.epoch == b.epoch);
    CHECK(a.step == b.step);
    CHECK(a.hr.to_vector<float>() == b.hr.to_vector<float>());
  }
}

TEST_CASE("without drop_last the last smaller batch is split over ranks and every sample is seen") {
  TempDir dir("loader-droplast");
  const ShardSet set = make_set(dir, 23);
  std::multiset<int64_t> seen;
  for (int r = 0; r < 2; ++r) {
    LoaderOptions o = options(10, r, 2);
    o.drop_last = false;
    Loader l(set, o);
    CHECK(l.steps_per_epoch() == 3);
    const auto batches = run(l, 3, set);
    CHECK(batches[2].size() == (r == 0 ? 1u : 2u));  // 3 left: [0, 1) and [1, 3)
    for (const auto& b : batches) seen.insert(b.begin(), b.end());
    CHECK(l.cursor() == LoaderCursor{1, 0});
  }
  CHECK(seen.size() == 23);
  for (int64_t i = 0; i < 23; ++i) CHECK(seen.count(i) == 1);
  // With drop_last the 3 left-over samples are skipped.
  Loader l(set, options(10, 0, 1));
  CHECK(l.steps_per_epoch() == 2);
}

TEST_CASE("the augmentation hook runs per sample and its errors reach next()") {
  TempDir dir("loader-augment");
  const ShardSet set = make_set(dir, 12);
  // Flip with probability 1/2 from the sample's own Philox stream, then crop to 3x3.
  LoaderOptions o = options(4, 0, 1, 3);
  o.shuffle = false;
  o.lowres_sizes = std::vector<int>{};
  o.augment = [](Sample& s, const AugmentContext& ctx) {
    Generator g(ctx.seed,
                Generator::stream_id(static_cast<uint64_t>(ctx.epoch), static_cast<uint64_t>(ctx.index)));
    if (philox::block(g.seed(), g.stream(), 0).v[0] & 1u) s.image = hflip(s.image);
    s.image = crop(s.image, 0, 0, 3, 3);
  };
  Loader l(set, o);
  const Batch b = l.next();
  CHECK(b.hr.shape() == Shape{4, 3, 3, 1});
  CHECK(b.lowres.empty());
  CHECK(b.indices == std::vector<int64_t>{0, 1, 2, 3});
  Loader l2(set, o);
  CHECK(l2.next().hr.to_vector<float>() == b.hr.to_vector<float>());
  // A failing hook: the error surfaces in next(), naming what went wrong.
  o.augment = [](Sample& s, const AugmentContext& ctx) {
    IRIS_CHECK(ctx.index != 5, "augment refused sample ", ctx.index);
    (void)s;
  };
  Loader bad(set, o);
  (void)bad.next();
  check_throws_with([&] { (void)bad.next(); }, {"augment refused sample 5"});
  // Inconsistent sizes inside one batch.
  o.augment = [](Sample& s, const AugmentContext& ctx) {
    if (ctx.index == 2) s.image = crop(s.image, 0, 0, 2, 2);
  };
  Loader mixed(set, o);
  check_throws_with([&] { (void)mixed.next(); }, {"sample 2", "2x2x1", "one size"});
}

TEST_CASE("loader options are validated") {
  TempDir dir("loader-options");
  const ShardSet set = make_set(dir, 12);
  check_throws_with([&] { Loader l(set, options(4, 0, 3)); },
                    {"global batch 4", "does not divide by 3 ranks"});
  check_throws_with([&] { Loader l(set, options(4, 3, 3)); }, {"rank 3"});
  check_throws_with([&] { Loader l(set, options(0, 0, 1)); }, {"batch_size"});
  check_throws_with([&] { Loader l(set, options(13, 0, 1)); }, {"12 samples make no batch of 13"});
  LoaderOptions o = options(4, 0, 1);
  o.lowres_sizes = std::vector<int>{3};
  check_throws_with([&] { Loader l(set, o); }, {"no low-res size 3"});
}
