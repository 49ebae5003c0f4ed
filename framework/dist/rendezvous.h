// File rendezvous: how the ranks of a job that share a filesystem, but have no working MPI, agree on NCCL's
// unique id. The case it serves: `srun` on a cluster whose MPI was built without Slurm's PMI support, where
// MPI_Init fails or starts every task as its own rank 0 (llm.c's "fs" method, made safe: an atomic write, a
// per-job file name, a timeout that names the file).
//
//   IRIS_RENDEZVOUS_DIR  a folder rank 0 can write and every rank can read (a filesystem all nodes share)
//   IRIS_RENDEZVOUS_KEY  a name unique to this job step (default: Slurm's <SLURM_JOB_ID>.<SLURM_STEP_ID>)
//
// Rank, world size and local rank/size then come from the launcher's variables alone (detect_launcher).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/dist/communicator.h"

namespace iris::dist {

struct RendezvousConfig {
  std::string dir;  // "" when IRIS_RENDEZVOUS_DIR is not set: no file rendezvous
  std::string key;
  bool enabled() const { return !dir.empty(); }
  std::string path() const;  // dir/iris-rendezvous-<key>
};

// Reads IRIS_RENDEZVOUS_DIR and IRIS_RENDEZVOUS_KEY (or Slurm's job and step ids). Throws iris::Error when
// the folder is set but no key can be found, or the key holds characters unsafe in a file name.
RendezvousConfig rendezvous_from_env(const EnvLookup& getenv_fn = nullptr);

// Rank 0 writes `bytes` to path() (a temporary name, then rename: a reader sees all of it or nothing) and
// returns them; every other rank waits for the file, polling, and returns its contents, which must be
// `size` bytes. Throws iris::Error naming the file, the folder and the rank after `timeout_s` seconds
// without it (0: wait forever).
std::vector<uint8_t> rendezvous_exchange(const RendezvousConfig& config, int rank,
                                         const std::vector<uint8_t>& bytes, size_t size, double timeout_s);

// Removes path() (rank 0, once every rank has read it). Never throws.
void rendezvous_remove(const RendezvousConfig& config);

// The tasks Slurm runs on node `node_id` from SLURM_STEP_TASKS_PER_NODE ("2(x3),1": two tasks on each of the
// first three nodes, then one); -1 when the text is malformed or has no such node.
int slurm_tasks_on_node(const std::string& tasks_per_node, int node_id);

}  // namespace iris::dist
