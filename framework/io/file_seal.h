// The seal: a small checksummed header that Iris writes into the HDF5 user block of every file it writes
// atomically (checkpoints, shards, sample files), so that a damaged file is refused before the HDF5 library
// parses it. HDF5 ignores the user block; h5py and other readers open sealed files as usual.
//
// Why: the HDF5 C library can crash (segfault) on damaged metadata, so per-dataset checksums, which are read
// through HDF5, come too late. The seal records the file's length, a CRC-32C of every byte after the user
// block that is not a dataset's raw data (the metadata HDF5 parses), the raw-data extents it excluded, and a
// CRC-32C of everything after the user block. Checking the metadata CRC reads only the small metadata part
// of the file, so opening a large shard stays cheap; the raw data is covered by each dataset's own checksum.
//
// Layout of the user block (little-endian), then zeros up to its end:
//   0  "IRISSEAL"  8  u32 version (1)  12 u32 block bytes  16 u64 file length  24 u32 whole-file CRC
//   28 u32 metadata CRC  32 u32 extent count (kExtentsNotRecorded: too many to fit)  36 u32 block CRC
//   40 extents: u64 offset, u64 bytes (absolute file offsets)
// The block CRC is over the whole user block with that field zeroed, so any damaged byte in it is found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace iris::h5 {

struct Extent {
  int64_t offset = 0, bytes = 0;
};

// The user-block size (a power of two, at least 512, as HDF5 requires) that holds a seal recording up to
// `max_extents` raw-data extents.
int64_t seal_block_bytes(int64_t max_extents);

// Writes the seal into the first `block_bytes` of the closed HDF5 file `path`, which was created with a user
// block of that size. Extents that do not fit are not recorded (readers then check the whole file).
void write_seal(const std::string& path, int64_t block_bytes, std::vector<Extent> raw_extents);

enum class SealState {
  sealed,   // the seal matched: HDF5 may parse the file
  unsealed  // no seal (a file from an older Iris or another program): nothing could be checked
};

struct SealCheck {
  SealState state = SealState::unsealed;
  bool whole_file = false;  // the whole-file CRC was checked (not only the metadata)
};

// Checks the seal of `path` without HDF5: the length, the block CRC and the metadata CRC (or, with
// `whole_file` or when the extents were not recorded, the CRC of every byte). Throws iris::Error naming the
// file and what is wrong ("truncated: 12,345 of 67,890 bytes", "checksum mismatch ...").
SealCheck check_seal(const std::string& path, bool whole_file = false);

// True when the file's first bytes are (or were, before some damage) the seal's magic.
bool looks_sealed(const std::string& path);

// Zeroes the seal of a sealed file that is about to be modified in place (the seal would no longer match).
void remove_seal(const std::string& path);

}  // namespace iris::h5
