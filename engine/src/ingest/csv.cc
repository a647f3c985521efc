#include "ingest/csv.h"

namespace tailor::ingest {

namespace {
constexpr size_t kBufferSize = 1 << 16;
}

CsvReader::CsvReader(std::istream& in) : in_(in), buf_(kBufferSize) {}

bool CsvReader::Fill() {
  if (pos_ < len_) return true;
  if (!in_) return false;
  in_.read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  len_ = static_cast<size_t>(in_.gcount());
  pos_ = 0;
  return len_ > 0;
}

int CsvReader::Peek() {
  if (!Fill()) return -1;
  return static_cast<unsigned char>(buf_[pos_]);
}

int CsvReader::Get() {
  if (!Fill()) return -1;
  ++consumed_;
  return static_cast<unsigned char>(buf_[pos_++]);
}

CsvReader::Result CsvReader::Next(std::vector<std::string>* fields) {
  fields->clear();
  error_.clear();
  if (!started_) {
    started_ = true;
    if (Fill() && len_ - pos_ >= 3 && buf_[pos_] == '\xEF' && buf_[pos_ + 1] == '\xBB' &&
        buf_[pos_ + 2] == '\xBF') {
      pos_ += 3;
      consumed_ += 3;
    }
  }
  // Blank lines carry no record.
  for (;;) {
    int c = Peek();
    if (c == -1) return Result::kEnd;
    if (c == '\n') {
      Get();
      ++line_;
    } else if (c == '\r') {
      Get();
    } else {
      break;
    }
  }
  record_line_ = line_;

  // Consumes one line ending (LF, CRLF or a lone CR) if one is next.
  auto end_of_line = [this] {
    int c = Peek();
    if (c == '\r') {
      Get();
      c = Peek();
    }
    if (c == '\n') Get();
    ++line_;
  };
  auto skip_line = [this] {
    for (int c = Get(); c != -1; c = Get()) {
      if (c == '\n') {
        ++line_;
        return;
      }
    }
  };

  std::string field;
  for (;;) {
    if (Peek() == '"') {
      Get();
      for (;;) {
        int c = Get();
        if (c == -1) {
          error_ = "unterminated quoted field";
          return Result::kError;
        }
        if (c == '"') {
          if (Peek() != '"') break;
          Get();
        } else if (c == '\n') {
          ++line_;
        }
        field.push_back(static_cast<char>(c));
      }
      int c = Peek();
      if (c == ',') {
        Get();
        fields->push_back(std::move(field));
        field.clear();
        continue;
      }
      if (c == '\n' || c == '\r' || c == -1) {
        end_of_line();
        fields->push_back(std::move(field));
        return Result::kRecord;
      }
      error_ = "unexpected text after a closing quote (a quote inside a field must be doubled)";
      skip_line();
      return Result::kError;
    }
    for (;;) {
      int c = Peek();
      if (c == ',') {
        Get();
        fields->push_back(std::move(field));
        field.clear();
        break;
      }
      if (c == '\n' || c == '\r' || c == -1) {
        end_of_line();
        fields->push_back(std::move(field));
        return Result::kRecord;
      }
      Get();
      field.push_back(static_cast<char>(c));
    }
  }
}

}  // namespace tailor::ingest
