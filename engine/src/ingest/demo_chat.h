// The demo world's chat lines: labelled texts a customer might type into a
// shop's chat, for training the intent plugin where no other data is at hand
// (`tailor demo --chat FILE`, then `tailor train intent --data FILE`).
//
// Labels are the intent names of config/intents.yaml, whose actions point at
// the demo catalog's categories and offers (phones, audio, wearables, home,
// accessories, the loyalty app; service intents that suppress upsell), plus
// "oos" for out-of-scope chatter. CLINC150 remains the evaluation set and,
// where present, the richer model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tailor::ingest {

struct ChatLine {
  std::string text;
  std::string label;  // an intent name, or "oos"
};

// Deterministic for a seed: the same lines in the same order on every machine.
// per_intent lines for each intent, and 6 x per_intent out-of-scope lines
// (out-of-scope detection needs many more unlike texts than any one intent).
std::vector<ChatLine> DemoChatLines(uint64_t seed, int per_intent = 60);

// The intent labels DemoChatLines uses (without "oos"), in a fixed order.
const std::vector<std::string>& DemoChatIntents();

// Writes lines as CSV with the header text,label (quoted where needed).
bool WriteChatCsv(const std::string& path, const std::vector<ChatLine>& lines, std::string* err);

}  // namespace tailor::ingest
