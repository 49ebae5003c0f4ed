// Study tokens: a shared secret that every request of a study served beyond this machine must carry.
//
// study.json keeps only "sha256:<salt hex>:<digest hex>" (SHA-256 of salt + token, OpenSSL's), so that the
// study folder, which may be copied around with its answers, does not give the token away.
#pragma once

#include <string>

namespace iris::rate {

// At least 8 characters, printable ASCII without spaces (it travels in URLs and headers). Throws otherwise.
void check_token(const std::string& token);
std::string hash_token(const std::string& token);  // with a fresh random salt
// Constant-time in the token's content: an attacker timing replies learns nothing about the digest.
bool token_matches(const std::string& token, const std::string& stored_hash);
std::string random_token();  // 32 hex digits from the operating system's random source

}  // namespace iris::rate
