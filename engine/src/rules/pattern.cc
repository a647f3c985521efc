#include "rules/pattern.h"

#include <lua.hpp>

#include <cctype>
#include <cstddef>
#include <cstring>

#include "rules/sandbox.h"

// Everything below may raise a Lua error (longjmp): no local here has a
// destructor.

namespace tailor::rules_internal {

namespace {

constexpr char kEsc = '%';
constexpr int kMaxCaptures = 32;     // as LUA_MAXCAPTURES
constexpr int kMaxMatchDepth = 200;  // as lstrlib's MAXCCALLS: C recursion
constexpr unsigned kStepsPerCharge = 256;
constexpr ptrdiff_t kUnfinished = -1;  // capture opened, not closed
constexpr ptrdiff_t kPosition = -2;    // () position capture

struct Matcher {
  const char* src_init;
  const char* src_end;
  const char* p_end;
  lua_State* L;
  int depth_left;
  int level;  // captures opened so far
  unsigned steps;
  struct {
    const char* init;
    ptrdiff_t len;
  } capture[kMaxCaptures];
};

// One unit of matcher work; charged to the rule's budget in batches.
inline void Step(Matcher* m, unsigned n = 1) {
  m->steps += n;
  if (m->steps >= kStepsPerCharge) {
    Charge(m->L, m->steps);
    m->steps = 0;
  }
}

void Init(Matcher* m, lua_State* L, const char* s, size_t ls, const char* p, size_t lp) {
  m->L = L;
  m->src_init = s;
  m->src_end = s + ls;
  m->p_end = p + lp;
  m->steps = 0;
}

void Reset(Matcher* m) {
  m->level = 0;
  m->depth_left = kMaxMatchDepth;
}

const char* Match(Matcher* m, const char* s, const char* p);

// The end of the single-character class that starts at p.
const char* ClassEnd(Matcher* m, const char* p) {
  switch (*p++) {
    case kEsc:
      if (p == m->p_end) luaL_error(m->L, "malformed pattern (ends with '%%')");
      return p + 1;
    case '[':
      if (*p == '^') p++;
      do {  // the first character of a set may be ']'
        if (p == m->p_end) luaL_error(m->L, "malformed pattern (missing ']')");
        if (*(p++) == kEsc && p < m->p_end) p++;
      } while (*p != ']');
      return p + 1;
    default:
      return p;
  }
}

bool ClassMatches(int c, int cl) {
  bool res;
  switch (std::tolower(cl)) {
    case 'a':
      res = std::isalpha(c);
      break;
    case 'c':
      res = std::iscntrl(c);
      break;
    case 'd':
      res = std::isdigit(c);
      break;
    case 'g':
      res = std::isgraph(c);
      break;
    case 'l':
      res = std::islower(c);
      break;
    case 'p':
      res = std::ispunct(c);
      break;
    case 's':
      res = std::isspace(c);
      break;
    case 'u':
      res = std::isupper(c);
      break;
    case 'w':
      res = std::isalnum(c);
      break;
    case 'x':
      res = std::isxdigit(c);
      break;
    default:
      return cl == c;
  }
  return std::isupper(cl) ? !res : res;
}

// p points at '[', ec at the closing ']'.
bool SetMatches(int c, const char* p, const char* ec) {
  bool in = true;
  if (*(p + 1) == '^') {
    in = false;
    p++;
  }
  while (++p < ec) {
    if (*p == kEsc) {
      p++;
      if (ClassMatches(c, static_cast<unsigned char>(*p))) return in;
    } else if (*(p + 1) == '-' && p + 2 < ec) {
      p += 2;
      if (static_cast<unsigned char>(*(p - 2)) <= c && c <= static_cast<unsigned char>(*p))
        return in;
    } else if (static_cast<unsigned char>(*p) == c) {
      return in;
    }
  }
  return !in;
}

bool SingleMatches(Matcher* m, const char* s, const char* p, const char* ep) {
  if (s >= m->src_end) return false;
  int c = static_cast<unsigned char>(*s);
  switch (*p) {
    case '.':
      return true;
    case kEsc:
      return ClassMatches(c, static_cast<unsigned char>(*(p + 1)));
    case '[':
      return SetMatches(c, p, ep - 1);
    default:
      return static_cast<unsigned char>(*p) == c;
  }
}

const char* MatchBalance(Matcher* m, const char* s, const char* p) {
  if (p >= m->p_end - 1) luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= m->src_end || *s != *p) return nullptr;
  const char b = *p, e = *(p + 1);
  int open = 1;
  while (++s < m->src_end) {
    Step(m);
    if (*s == e) {
      if (--open == 0) return s + 1;
    } else if (*s == b) {
      open++;
    }
  }
  return nullptr;
}

const char* MaxExpand(Matcher* m, const char* s, const char* p, const char* ep) {
  ptrdiff_t i = 0;
  while (SingleMatches(m, s + i, p, ep)) {
    Step(m);
    i++;
  }
  while (i >= 0) {  // try the longest first, then back off one at a time
    Step(m);
    if (const char* res = Match(m, s + i, ep + 1)) return res;
    i--;
  }
  return nullptr;
}

const char* MinExpand(Matcher* m, const char* s, const char* p, const char* ep) {
  for (;;) {
    Step(m);
    if (const char* res = Match(m, s, ep + 1)) return res;
    if (!SingleMatches(m, s, p, ep)) return nullptr;
    s++;
  }
}

const char* StartCapture(Matcher* m, const char* s, const char* p, ptrdiff_t what) {
  if (m->level >= kMaxCaptures) luaL_error(m->L, "too many captures");
  m->capture[m->level].init = s;
  m->capture[m->level].len = what;
  m->level++;
  const char* res = Match(m, s, p);
  if (res == nullptr) m->level--;
  return res;
}

const char* EndCapture(Matcher* m, const char* s, const char* p) {
  int l = -1;
  for (int i = m->level - 1; i >= 0; i--)
    if (m->capture[i].len == kUnfinished) {
      l = i;
      break;
    }
  if (l < 0) luaL_error(m->L, "invalid pattern capture");
  m->capture[l].len = s - m->capture[l].init;
  const char* res = Match(m, s, p);
  if (res == nullptr) m->capture[l].len = kUnfinished;
  return res;
}

int CaptureIndex(Matcher* m, int c) {
  int l = c - '1';
  if (l < 0 || l >= m->level || m->capture[l].len == kUnfinished)
    return luaL_error(m->L, "invalid capture index %%%d", l + 1);
  return l;
}

const char* MatchCapture(Matcher* m, const char* s, int c) {
  int l = CaptureIndex(m, c);
  size_t len = static_cast<size_t>(m->capture[l].len);
  Step(m, static_cast<unsigned>(len / 16));
  if (static_cast<size_t>(m->src_end - s) >= len && std::memcmp(m->capture[l].init, s, len) == 0)
    return s + len;
  return nullptr;
}

const char* Match(Matcher* m, const char* s, const char* p) {
  if (m->depth_left-- == 0) luaL_error(m->L, "pattern too complex");
  for (;;) {
    Step(m);
    if (p == m->p_end) break;
    bool single = false;
    switch (*p) {
      case '(':
        if (*(p + 1) == ')')
          s = StartCapture(m, s, p + 2, kPosition);
        else
          s = StartCapture(m, s, p + 1, kUnfinished);
        break;
      case ')':
        s = EndCapture(m, s, p + 1);
        break;
      case '$':
        if (p + 1 != m->p_end) {
          single = true;
          break;
        }
        s = (s == m->src_end) ? s : nullptr;
        break;
      case kEsc:
        switch (*(p + 1)) {
          case 'b':
            s = MatchBalance(m, s, p + 2);
            if (s != nullptr) {
              p += 4;
              continue;
            }
            break;
          case 'f': {
            p += 2;
            if (*p != '[') luaL_error(m->L, "missing '[' after '%%f' in pattern");
            const char* ep = ClassEnd(m, p);
            int prev = (s == m->src_init) ? '\0' : static_cast<unsigned char>(*(s - 1));
            int cur = (s < m->src_end) ? static_cast<unsigned char>(*s) : '\0';
            if (!SetMatches(prev, p, ep - 1) && SetMatches(cur, p, ep - 1)) {
              p = ep;
              continue;
            }
            s = nullptr;
            break;
          }
          case '0':
          case '1':
          case '2':
          case '3':
          case '4':
          case '5':
          case '6':
          case '7':
          case '8':
          case '9':
            s = MatchCapture(m, s, static_cast<unsigned char>(*(p + 1)));
            if (s != nullptr) {
              p += 2;
              continue;
            }
            break;
          default:
            single = true;
        }
        break;
      default:
        single = true;
    }
    if (!single) break;
    const char* ep = ClassEnd(m, p);
    if (!SingleMatches(m, s, p, ep)) {
      if (*ep == '*' || *ep == '?' || *ep == '-') {  // zero repetitions are fine
        p = ep + 1;
        continue;
      }
      s = nullptr;
      break;
    }
    switch (*ep) {
      case '?': {
        if (const char* res = Match(m, s + 1, ep + 1)) {
          s = res;
          break;
        }
        p = ep + 1;
        continue;
      }
      case '+':
        s = MaxExpand(m, s + 1, p, ep);
        break;
      case '*':
        s = MaxExpand(m, s, p, ep);
        break;
      case '-':
        s = MinExpand(m, s, p, ep);
        break;
      default:
        s++;
        p = ep;
        continue;
    }
    break;
  }
  m->depth_left++;
  return s;
}

// Pushes capture i (the whole match s..e when the pattern has none).
void PushCapture(Matcher* m, int i, const char* s, const char* e) {
  if (i >= m->level) {
    if (i != 0) luaL_error(m->L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(m->L, s, static_cast<size_t>(e - s));
    return;
  }
  ptrdiff_t l = m->capture[i].len;
  if (l == kUnfinished) luaL_error(m->L, "unfinished capture");
  if (l == kPosition)
    lua_pushinteger(m->L, (m->capture[i].init - m->src_init) + 1);
  else
    lua_pushlstring(m->L, m->capture[i].init, static_cast<size_t>(l));
}

int PushCaptures(Matcher* m, const char* s, const char* e) {
  int n = (m->level == 0 && s) ? 1 : m->level;
  luaL_checkstack(m->L, n, "too many captures");
  for (int i = 0; i < n; i++) PushCapture(m, i, s, e);
  return n;
}

// A 1-based, possibly negative position -> a 1-based position in [1, len+1].
size_t StartOf(lua_Integer pos, size_t len) {
  if (pos > 0) return static_cast<size_t>(pos);
  if (pos == 0) return 1;
  if (pos < -static_cast<lua_Integer>(len)) return 1;
  return len + static_cast<size_t>(pos) + 1;
}

bool HasSpecials(const char* p, size_t lp) {
  for (size_t i = 0; i < lp; ++i)
    if (std::strchr("^$*+?.([%-", p[i]) != nullptr && p[i] != '\0') return true;
  return false;
}

int FindAux(lua_State* L, bool find) {
  size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  size_t init = StartOf(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !HasSpecials(p, lp))) {
    Charge(L, static_cast<int64_t>((ls - init) / 64));  // memmem is linear
    const void* at = lp == 0 ? s + init : memmem(s + init, ls - init, p, lp);
    if (at != nullptr) {
      const char* a = static_cast<const char*>(at);
      lua_pushinteger(L, (a - s) + 1);
      lua_pushinteger(L, static_cast<lua_Integer>((a - s) + static_cast<ptrdiff_t>(lp)));
      return 2;
    }
  } else {
    Matcher m;
    const char* s1 = s + init;
    bool anchor = (*p == '^');
    if (anchor) {
      p++;
      lp--;
    }
    Init(&m, L, s, ls, p, lp);
    do {
      Reset(&m);
      if (const char* e = Match(&m, s1, p)) {
        if (find) {
          lua_pushinteger(L, (s1 - s) + 1);
          lua_pushinteger(L, e - s);
          return PushCaptures(&m, nullptr, nullptr) + 2;
        }
        return PushCaptures(&m, s1, e);
      }
    } while (s1++ < m.src_end && !anchor);
  }
  luaL_pushfail(L);
  return 1;
}

struct Gmatch {
  const char* src;
  const char* p;
  const char* lastmatch;
  Matcher m;
};

int GmatchNext(lua_State* L) {
  auto* gm = static_cast<Gmatch*>(lua_touserdata(L, lua_upvalueindex(3)));
  gm->m.L = L;  // the iterator may run in another call (or coroutine)
  for (const char* src = gm->src; src <= gm->m.src_end; src++) {
    Reset(&gm->m);
    const char* e = Match(&gm->m, src, gm->p);
    if (e != nullptr && e != gm->lastmatch) {
      gm->src = gm->lastmatch = e;
      return PushCaptures(&gm->m, src, e);
    }
  }
  return 0;
}

// Appends the replacement for the match s..e; false when the original text
// is kept (a false or nil function/table result).
bool AddReplacement(Matcher* m, luaL_Buffer* b, const char* s, const char* e, int tr) {
  lua_State* L = m->L;
  switch (tr) {
    case LUA_TFUNCTION: {
      lua_pushvalue(L, 3);
      int n = PushCaptures(m, s, e);
      lua_call(L, n, 1);
      break;
    }
    case LUA_TTABLE:
      PushCapture(m, 0, s, e);
      lua_gettable(L, 3);
      break;
    default: {  // a string with %0..%9 and %%
      size_t l = 0;
      const char* news = lua_tolstring(L, 3, &l);
      Step(m, static_cast<unsigned>(l / 16));
      const char* q = news;
      while ((q = static_cast<const char*>(std::memchr(q, kEsc, l))) != nullptr) {
        luaL_addlstring(b, news, static_cast<size_t>(q - news));
        q++;
        if (*q == kEsc) {
          luaL_addchar(b, *q);
        } else if (*q == '0') {
          luaL_addlstring(b, s, static_cast<size_t>(e - s));
        } else if (std::isdigit(static_cast<unsigned char>(*q))) {
          PushCapture(m, *q - '1', s, e);
          luaL_tolstring(L, -1, nullptr);
          lua_remove(L, -2);
          luaL_addvalue(b);
        } else {
          luaL_error(L, "invalid use of '%c' in replacement string", kEsc);
        }
        l -= static_cast<size_t>(q + 1 - news);
        news = q + 1;
      }
      luaL_addlstring(b, news, l);
      return true;
    }
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, static_cast<size_t>(e - s));
    return false;
  }
  if (!lua_isstring(L, -1)) luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return true;
}

}  // namespace

int PatternFind(lua_State* L) { return FindAux(L, true); }

int PatternMatch(lua_State* L) { return FindAux(L, false); }

int PatternGmatch(lua_State* L) {
  size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  size_t init = StartOf(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) init = ls + 1;  // start after the end: no matches
  lua_settop(L, 2);              // the subject and pattern stay alive as upvalues
  auto* gm = static_cast<Gmatch*>(lua_newuserdatauv(L, sizeof(Gmatch), 0));
  Init(&gm->m, L, s, ls, p, lp);
  gm->src = s + init;
  gm->p = p;
  gm->lastmatch = nullptr;
  lua_pushcclosure(L, GmatchNext, 3);
  return 1;
}

int PatternGsub(lua_State* L) {
  size_t srcl = 0, lp = 0;
  const char* src = luaL_checklstring(L, 1, &srcl);
  const char* p = luaL_checklstring(L, 2, &lp);
  const char* lastmatch = nullptr;
  int tr = lua_type(L, 3);
  lua_Integer max_s = luaL_optinteger(L, 4, static_cast<lua_Integer>(srcl) + 1);
  bool anchor = (*p == '^');
  lua_Integer n = 0;
  bool changed = false;
  luaL_argexpected(
      L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
      "string/function/table");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (anchor) {
    p++;
    lp--;
  }
  Matcher m;
  Init(&m, L, src, srcl, p, lp);
  while (n < max_s) {
    Reset(&m);
    const char* e = Match(&m, src, p);
    if (e != nullptr && e != lastmatch) {
      n++;
      changed = AddReplacement(&m, &b, src, e, tr) || changed;
      src = lastmatch = e;
    } else if (src < m.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, static_cast<size_t>(m.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace tailor::rules_internal
