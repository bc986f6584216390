// Results as CSV (RFC 4180): file, label, class_index, probability.

export const CSV_COLUMNS = ["file", "label", "class_index", "probability"];

function cell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  // A file name starting with = + - @ would run as a formula in spreadsheet programs.
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** rows: [{file, label, class_index, probability}] -> CSV text with a header line. */
export function toCsv(rows) {
  const lines = [CSV_COLUMNS.join(",")];
  for (const row of rows) {
    lines.push(CSV_COLUMNS.map((c) => cell(row[c])).join(","));
  }
  return `${lines.join("\r\n")}\r\n`;
}

/** Offer text as a file download named `name`. */
export function download(name, text, type = "text/csv;charset=utf-8") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
