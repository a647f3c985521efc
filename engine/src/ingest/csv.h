// A streaming RFC 4180 CSV reader: comma-separated fields, optional double
// quotes around a field, "" for a quote inside one, commas and line breaks
// (LF or CRLF) allowed inside quoted fields. It reports the physical line on
// which each record starts so that errors can name FILE:LINE.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

namespace tailor::ingest {

class CsvReader {
 public:
  // `in` is borrowed and must outlive the reader.
  explicit CsvReader(std::istream& in);

  enum class Result { kRecord, kEnd, kError };

  // Reads the next record into *fields (cleared first). Blank lines are
  // skipped. On kError, error() says why and the reader has skipped to the
  // end of the offending line, so reading can go on.
  Result Next(std::vector<std::string>* fields);

  // 1-based line where the last record (or error) started.
  int64_t line() const { return record_line_; }
  const std::string& error() const { return error_; }
  // Bytes consumed from the stream so far.
  int64_t bytes() const { return consumed_; }

 private:
  int Get();   // next byte or -1
  int Peek();  // next byte without consuming it, or -1
  bool Fill();

  std::istream& in_;
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  int64_t consumed_ = 0;
  int64_t line_ = 1;  // line of the next unread byte
  int64_t record_line_ = 0;
  bool started_ = false;  // a UTF-8 byte order mark is dropped at the start
  std::string error_;
};

}  // namespace tailor::ingest
