/**
 * @module JSON read exactly: every number comes back as the text it was
 * written as, so that money and counts past 2^53 lose nothing.
 */

/** Parses JSON `text`; numbers are returned as their source text (strings), everything else as JSON.parse does. */
export function parseJsonExact(text: string): unknown {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      // Skip the string, escapes included.
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92 /* \ */) i++;
    } else if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
      let j = i + 1;
      while (j < text.length && /[0-9eE.+-]/.test(text[j])) j++;
      out += text.slice(from, i) + '"' + text.slice(i, j) + '"';
      from = j;
      i = j - 1;
    }
  }
  return JSON.parse(out + text.slice(from));
}
