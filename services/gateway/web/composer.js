// The input line's memory: Up and Down walk through what was sent, Tab
// completes the word before the caret and cycles on through the candidates.

const KEEP = 200;

export class Composer {
  constructor(input) {
    this.input = input;
    this.sent = [];
    this.recalled = -1; // how far back Up has gone; -1: the draft
    this.draft = "";
    this.completion = null;
  }

  remember(text) {
    this.sent.push(text);
    if (this.sent.length > KEEP) this.sent.shift();
    this.reset();
  }

  reset() {
    this.recalled = -1;
    this.completion = null;
  }

  /** Up (step 1) or Down (step -1) on the first or last line; true when the key was used. */
  recall(step) {
    const { input } = this;
    const caret = input.selectionStart;
    const onFirst = input.value.lastIndexOf("\n", caret - 1) < 0;
    const onLast = input.value.indexOf("\n", caret) < 0;
    if ((step > 0 && !onFirst) || (step < 0 && !onLast)) return false;
    const next = this.recalled + step;
    if (next >= this.sent.length || next < -1) return false;
    if (this.recalled < 0) this.draft = input.value;
    this.recalled = next;
    input.value = next < 0 ? this.draft : this.sent[this.sent.length - 1 - next];
    input.setSelectionRange(input.value.length, input.value.length);
    return true;
  }

  /**
   * Complete the word before the caret from ``candidates(word, atLineStart)``;
   * a nick at the start of the line gets ": ". True when something was completed.
   */
  complete(candidates) {
    const { input } = this;
    let state = this.completion;
    if (!state || state.value !== input.value || state.caret !== input.selectionStart) {
      const caret = input.selectionStart;
      const head = input.value.slice(0, caret);
      const start = head.search(/\S*$/);
      const word = head.slice(start);
      if (!word) return false;
      const found = candidates(word, start === 0);
      if (!found.length) return false;
      state = {
        before: input.value.slice(0, start),
        after: input.value.slice(caret).replace(/^ /, ""),
        found,
        index: -1,
        lineStart: start === 0,
      };
    }
    state.index = (state.index + 1) % state.found.length;
    const choice = state.found[state.index];
    const suffix = state.lineStart && !/^[/#]/.test(choice) ? ": " : " ";
    input.value = state.before + choice + suffix + state.after;
    const caret = state.before.length + choice.length + suffix.length;
    input.setSelectionRange(caret, caret);
    state.value = input.value;
    state.caret = caret;
    this.completion = state;
    return true;
  }
}
