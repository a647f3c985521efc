#include "ingest/demo_chat.h"

#include <fstream>
#include <random>
#include <set>

namespace tailor::ingest {
namespace {

// One intent: phrasings with an optional "{}" slot, and the nouns that fill it.
struct IntentSpec {
  const char* label;
  std::vector<const char*> frames;
  std::vector<const char*> nouns;
};

const std::vector<IntentSpec>& Specs() {
  static const std::vector<IntentSpec> kSpecs = {
      {"find_phone",
       {"my {} broke, i need a new one", "my {} screen is cracked", "i dropped my {} and it died",
        "looking for a new {}", "which {} should i buy", "i want to upgrade my {}",
        "my {} battery dies all the time", "do you have the latest {}",
        "i lost my {}, i need a replacement", "recommend a {} with a good camera",
        "my old {} is far too slow", "any deals on a new {}", "time to replace my {}",
        "need a {} for my daughter", "is the new {} worth it"},
       {"phone", "smartphone", "mobile", "cell phone", "handset", "iphone", "android phone"}},
      {"play_music",
       {"i want to listen to {}", "play some {}", "i need something to play my {} on",
        "best headphones for {}", "recommend a speaker for {}", "i love {}, what should i get",
        "my headphones broke and i miss my {}", "looking for earbuds to enjoy {}",
        "better sound for my {}", "noise cancelling headphones for {} on the commute",
        "a bluetooth speaker for {} in the garden", "put on some {}"},
       {"music", "my playlist", "jazz", "podcasts", "rock music", "songs", "albums", "the radio"}},
      {"next_song",
       {"skip this {}", "play the next {}", "next {} please", "can you skip to the next {}",
        "change the {}", "i don't like this {}, skip it", "go to the following {}",
        "move on to another {}"},
       {"song", "track", "tune", "one", "number"}},
      {"smart_home",
       {"i want to make my {} smarter", "smart lights for my {}", "control the heating in my {}",
        "looking for a smart thermostat for my {}", "home automation for my {}",
        "turn on the lights in the {}", "smart plugs for the {}", "redecorating the {}",
        "i need things for my new {}", "make my {} more cosy"},
       {"home", "flat", "living room", "kitchen", "bedroom", "house", "apartment"}},
      {"sync_device",
       {"my {} won't sync with my phone", "how do i connect my {} to the app",
        "i need a cable to sync my {}", "pair my {} with my laptop", "my {} stopped syncing",
        "my {} charger doesn't work", "i need a new charging cable for my {}",
        "bluetooth keeps dropping my {}", "sync my {} please", "the app can't find my {}"},
       {"watch", "smartwatch", "fitness tracker", "earbuds", "tablet", "device", "headphones"}},
      {"calories",
       {"how many calories did i burn {}", "i want to track my workouts {}", "count my steps {}",
        "something to track my running {}", "i'm trying to lose weight, tracking calories {}",
        "log my calories {}", "how much did i exercise {}", "track my heart rate {}"},
       {"today", "this week", "every day", "at the gym", "on my runs", "this morning"}},
      {"shopping_list",
       {"add {} to my shopping list", "put {} on my list", "what's on my shopping list",
        "remove {} from my shopping list", "do i have {} on my list already",
        "my shopping list needs {}"},
       {"milk", "batteries", "eggs", "bread", "coffee", "a charger", "bin bags"}},
      {"redeem_rewards",
       {"how do i redeem my {}", "use my {} on this order", "can i spend my {}", "cash in my {}",
        "i want to use my {} now", "apply my {} at checkout"},
       {"points", "reward points", "loyalty points", "rewards", "vouchers"}},
      {"rewards_balance",
       {"how many {} do i have", "what's my {} balance", "check my {}", "how much are my {} worth",
        "tell me my {} total", "did i earn {} on my last order"},
       {"points", "reward points", "loyalty points", "rewards"}},
      {"order_status",
       {"where is my {}", "my {} hasn't arrived", "when will my {} come", "track my {}",
        "has my {} shipped yet", "my {} is late", "what's the status of my {}",
        "still waiting for my {}"},
       {"order", "package", "parcel", "delivery", "purchase"}},
      {"card_declined",
       {"my {} was declined", "payment failed with my {}", "why was my {} rejected",
        "can't pay, the {} got declined", "checkout refuses my {}", "my {} keeps failing"},
       {"card", "credit card", "debit card", "visa", "payment"}},
      {"report_fraud",
       {"there is a {} i don't recognise", "someone used my card for a {}",
        "report a fraudulent {}", "i think my account was hacked, there's a strange {}",
        "i never made this {}", "block my card, there's a suspicious {}"},
       {"charge", "payment", "transaction", "purchase", "order"}},
      {"cancel",
       {"cancel my {}", "i want to close my {}", "stop my {}", "please end my {}",
        "how do i cancel my {}", "i don't want my {} anymore"},
       {"subscription", "account", "membership", "plan", "contract"}},
  };
  return kSpecs;
}

// Out of scope: what people also type into a shop's chat box.
const std::vector<const char*>& Chatter() {
  static const std::vector<const char*> kChatter = {"what's the weather like tomorrow",
                                                    "tell me a joke",
                                                    "who won the football last night",
                                                    "how tall is the eiffel tower",
                                                    "what is the capital of australia",
                                                    "how do i boil an egg",
                                                    "what time is it in tokyo",
                                                    "recommend a good film",
                                                    "how far is the moon",
                                                    "what's the meaning of life",
                                                    "translate hello into spanish",
                                                    "who wrote hamlet",
                                                    "how many days until christmas",
                                                    "is it going to rain today",
                                                    "what's 15 percent of 80",
                                                    "how do you make pancakes",
                                                    "what's your name",
                                                    "are you a robot",
                                                    "i'm bored",
                                                    "sing me a song",
                                                    "what's the best pizza topping",
                                                    "book me a flight to rome",
                                                    "how do i get to the station",
                                                    "what's the traffic like",
                                                    "when does the sun set",
                                                    "how old is the universe",
                                                    "what should i cook tonight",
                                                    "find me a recipe for lasagne",
                                                    "who is the prime minister",
                                                    "set an alarm for 7",
                                                    "remind me to call mum",
                                                    "what's the exchange rate for dollars",
                                                    "how do i learn french",
                                                    "what's a good name for a dog",
                                                    "how many people live in london",
                                                    "what's the score in the cricket",
                                                    "do you like cats",
                                                    "good morning",
                                                    "thanks, bye",
                                                    "how do i fix a flat tyre",
                                                    "what's the speed of light",
                                                    "where can i park nearby",
                                                    "what's on tv tonight",
                                                    "how long do i cook rice",
                                                    "tell me about dinosaurs",
                                                    "what is photosynthesis",
                                                    "how do i unblock a sink",
                                                    "what's the population of mars",
                                                    "can you help with my homework",
                                                    "what's the tallest mountain",
                                                    "plan my holiday",
                                                    "who painted the mona lisa",
                                                    "how do i tie a tie",
                                                    "is the museum open on sunday",
                                                    "what's a healthy breakfast",
                                                    "how do i apply for a passport",
                                                    "what day is it",
                                                    "how do i say thank you in japanese",
                                                    "what's the best way to learn guitar",
                                                    "where is the nearest hospital",
                                                    "how do i write a cv",
                                                    "who invented the telephone"};
  return kChatter;
}

// The openings and endings people add around what they mean.
const std::vector<const char*>& Openings() {
  static const std::vector<const char*> k = {
      "", "", "", "hi, ", "hey ", "hello, ", "excuse me, ", "quick question: ", "ok so ", "um "};
  return k;
}

const std::vector<const char*>& Endings() {
  static const std::vector<const char*> k = {"", "", "", "?", " please", " thanks", "!", " asap"};
  return k;
}

std::string Fill(const char* frame, const char* noun) {
  std::string out(frame);
  if (auto at = out.find("{}"); at != std::string::npos) out.replace(at, 2, noun);
  return out;
}

template <typename Rng, typename T>
const T& Pick(Rng& rng, const std::vector<T>& v) {
  return v[static_cast<size_t>(rng() % v.size())];
}

}  // namespace

const std::vector<std::string>& DemoChatIntents() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> v;
    for (const IntentSpec& s : Specs()) v.push_back(s.label);
    return v;
  }();
  return kNames;
}

std::vector<ChatLine> DemoChatLines(uint64_t seed, int per_intent) {
  // mt19937_64's output is fixed by the standard (distributions are not), so
  // the lines are the same everywhere; only raw draws are used.
  std::mt19937_64 rng(seed ^ 0x63686174ULL);  // "chat"
  std::vector<ChatLine> out;
  for (const IntentSpec& spec : Specs()) {
    std::set<std::string> seen;
    // Distinct lines while the templates allow, then repeats are fine.
    for (int tries = 0; static_cast<int>(seen.size()) < per_intent && tries < per_intent * 20;
         ++tries) {
      std::string text = std::string(Pick(rng, Openings())) +
                         Fill(Pick(rng, spec.frames), Pick(rng, spec.nouns)) + Pick(rng, Endings());
      if (seen.insert(text).second) out.push_back({std::move(text), spec.label});
    }
  }
  const int oos = per_intent * 6;
  std::set<std::string> seen;
  for (int tries = 0; static_cast<int>(seen.size()) < oos && tries < oos * 20; ++tries) {
    std::string text =
        std::string(Pick(rng, Openings())) + Pick(rng, Chatter()) + Pick(rng, Endings());
    if (seen.insert(text).second) out.push_back({std::move(text), "oos"});
  }
  return out;
}

bool WriteChatCsv(const std::string& path, const std::vector<ChatLine>& lines, std::string* err) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    *err = "cannot write " + path;
    return false;
  }
  auto field = [&](const std::string& s) {
    if (s.find_first_of(",\"\n") == std::string::npos) {
      out << s;
      return;
    }
    out << '"';
    for (char c : s) {
      if (c == '"') out << '"';  // a quote is doubled
      out << c;
    }
    out << '"';
  };
  out << "text,label\n";
  for (const ChatLine& l : lines) {
    field(l.text);
    out << ',';
    field(l.label);
    out << '\n';
  }
  out.flush();
  if (!out) {
    *err = "cannot write " + path;
    return false;
  }
  return true;
}

}  // namespace tailor::ingest
