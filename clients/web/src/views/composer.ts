/** The composer of the open chat: the message being answered, what it says of a block, the
 * text field with its `@` suggestions of members, attach, record (where the browser can),
 * send, the upload's progress and what went wrong. */

import { describe, h } from '../dom';
import type { Quote } from '../model/conversation';
import { applyMention, mentionQuery, suggestions, type Candidate, type MentionQuery } from '../model/mentions';
import { quote } from './message';

export interface ComposerActions {
  /** Sends the text (answering the reply shown, if any); throws what the client refused. */
  send(text: string): void;
  /** Uploads the file and sends it. */
  upload(file: File, onProgress: (fraction: number) => void): Promise<void>;
  typing(typing: boolean): void;
  cancelReply(): void;
  /** A user's name, for the quote of the message answered. */
  name?(userId: number): string;
  /** The chat's other members, by the names shown: what `@` suggests. */
  members?(): Candidate[];
}

export class ComposerView {
  /** "Replying to" and its quote, above the form. */
  readonly replying: HTMLElement;
  readonly form: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly progress: HTMLProgressElement;
  private readonly error: HTMLElement;
  /** What the composer says of a block (above the field). */
  private readonly note: HTMLElement;
  /** The members an `@` being typed matches, as a listbox over the field. */
  private readonly suggestionList: HTMLUListElement;
  private suggesting: { at: MentionQuery; members: Candidate[]; active: number } | undefined;

  constructor(private readonly actions: ComposerActions) {
    this.replying = h('div', { id: 'replying', hidden: true });
    const input = (this.input = h('input', {
      id: 'compose', type: 'text', autocomplete: 'off', placeholder: 'Message', maxlength: 10000, 'aria-label': 'Message',
      'aria-autocomplete': 'list', 'aria-controls': 'mention-list',
    }));
    this.note = h('p', { id: 'composer-note', role: 'status', hidden: true });
    this.suggestionList = h('ul', { id: 'mention-list', role: 'listbox', 'aria-label': 'Members to mention', hidden: true });
    const error = (this.error = h('p', { className: 'error', role: 'alert', id: 'composer-error' }));
    this.progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Upload progress' });
    const file = h('input', {
      id: 'attach', type: 'file', accept: 'audio/*,video/*', className: 'visually-hidden',
      onchange: () => {
        const picked = file.files?.[0];
        file.value = '';
        if (picked) void this.upload(picked);
      },
    });
    this.form = h('form', {
      id: 'composer',
      'aria-label': 'Send a message',
      onsubmit: (event: SubmitEvent) => {
        event.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        error.textContent = '';
        try {
          actions.send(text);
          input.value = '';
          this.closeSuggestions();
          actions.typing(false);
        } catch (e) {
          error.textContent = describe(e);
        }
      },
    },
      this.note,
      input,
      this.suggestionList,
      h('label', { for: 'attach', className: 'file' }, h('span', { role: 'button', tabindex: 0, className: 'attach', 'aria-label': 'Attach a voice note or video', title: 'Attach a voice note or video',
        onkeydown: (e: KeyboardEvent) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); file.click(); } },
      }, 'Attach')),
      file,
      this.recorder(),
      h('button', { type: 'submit', className: 'primary' }, 'Send'),
      this.progress,
      error);
    input.addEventListener('input', () => {
      actions.typing(input.value !== '');
      this.suggest();
    });
    input.addEventListener('keydown', (e: KeyboardEvent) => this.suggestionKey(e));
    input.addEventListener('blur', () => this.closeSuggestions());
  }

  /** Says what a block means here (`''`: nothing). */
  showNote(text: string): void {
    this.note.hidden = !text;
    this.note.textContent = text;
  }

  /** The members the `@` before the caret matches, listed under the field (none: closed). */
  private suggest(): void {
    const input = this.input;
    const at = mentionQuery(input.value, input.selectionStart ?? input.value.length);
    const members = at ? suggestions(at.query, this.actions.members?.() ?? []) : [];
    if (!at || members.length === 0) return this.closeSuggestions();
    const same = this.suggesting?.members.map((m) => m.userId).join() === members.map((m) => m.userId).join();
    this.suggesting = { at, members, active: same ? this.suggesting!.active : 0 };
    this.drawSuggestions();
  }

  private drawSuggestions(): void {
    const s = this.suggesting;
    this.suggestionList.hidden = !s;
    this.input.setAttribute('aria-expanded', String(!!s));
    if (!s) {
      this.input.removeAttribute('aria-activedescendant');
      return this.suggestionList.replaceChildren();
    }
    this.suggestionList.replaceChildren(...s.members.map((member, i) => h('li', {
      id: `mention-option-${member.userId}`, role: 'option', 'aria-selected': String(i === s.active), 'data-user-id': member.userId,
      // Chosen before the field loses focus (which closes the list).
      onmousedown: (e: MouseEvent) => { e.preventDefault(); this.choose(member); },
    }, `@${member.name}`)));
    this.input.setAttribute('aria-activedescendant', `mention-option-${s.members[s.active]!.userId}`);
  }

  /** Arrows move through the suggestions, Enter or Tab takes one, Escape closes them. */
  private suggestionKey(e: KeyboardEvent): void {
    const s = this.suggesting;
    if (!s) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      s.active = (s.active + (e.key === 'ArrowDown' ? 1 : s.members.length - 1)) % s.members.length;
      this.drawSuggestions();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      this.choose(s.members[s.active]!);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      this.closeSuggestions();
    }
  }

  /** Puts `@<name> ` in place of the `@` being typed. */
  private choose(member: Candidate): void {
    const s = this.suggesting;
    if (!s) return;
    const { text, caret } = applyMention(this.input.value, s.at, member.name);
    this.input.value = text;
    this.input.setSelectionRange(caret, caret);
    this.closeSuggestions();
    this.input.focus();
    this.actions.typing(true);
  }

  private closeSuggestions(): void {
    if (!this.suggesting && this.suggestionList.hidden) return;
    this.suggesting = undefined;
    this.drawSuggestions();
  }

  focus(): void {
    this.input.focus();
  }

  /** Shows the message being answered, or nothing. */
  showReply(reply: Quote | undefined): void {
    this.replying.hidden = !reply;
    this.replying.replaceChildren(...(reply ? [
      h('span', { className: 'muted' }, 'Replying to'),
      quote(reply, this.actions.name),
      h('button', { type: 'button', 'aria-label': 'Cancel the reply', onclick: () => this.actions.cancelReply() }, '×'),
    ] : []));
  }

  private async upload(picked: File): Promise<void> {
    const { progress, error } = this;
    error.textContent = '';
    progress.hidden = false;
    progress.value = 0;
    try {
      await this.actions.upload(picked, (fraction) => (progress.value = fraction));
    } catch (e) {
      error.textContent = `Upload failed: ${describe(e)}`;
    } finally {
      progress.hidden = true;
    }
  }

  /** A "Record" button where the browser can record (MediaRecorder): press to start, again
   * to stop and send the voice note. */
  private recorder(): HTMLElement | null {
    if (typeof MediaRecorder === 'undefined' || !navigator.mediaDevices?.getUserMedia) return null;
    let recording: { recorder: MediaRecorder; stream: MediaStream; timer: ReturnType<typeof setInterval> } | undefined;
    const elapsed = h('span', { className: 'muted', 'data-testid': 'recording', 'aria-live': 'off' });
    const button: HTMLButtonElement = h('button', {
      type: 'button', 'aria-pressed': 'false', 'aria-label': 'Record a voice note',
      onclick: async () => {
        if (recording) {
          recording.recorder.stop();
          return;
        }
        this.error.textContent = '';
        try {
          const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
          const type = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm'].find((t) => MediaRecorder.isTypeSupported(t));
          const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
          const chunks: Blob[] = [];
          const started = Date.now();
          recorder.ondataavailable = (e) => chunks.push(e.data);
          recorder.onstop = () => {
            stream.getTracks().forEach((t) => t.stop());
            clearInterval(recording?.timer);
            recording = undefined;
            button.textContent = 'Record';
            button.setAttribute('aria-pressed', 'false');
            button.setAttribute('aria-label', 'Record a voice note');
            elapsed.textContent = '';
            const mime = recorder.mimeType || 'audio/webm';
            const note = new File(chunks, `voice-note.${mime.includes('ogg') ? 'ogg' : 'webm'}`, { type: mime });
            if (note.size > 0) void this.upload(note);
          };
          recorder.start(250);
          const timer = setInterval(() => {
            const s = Math.floor((Date.now() - started) / 1000);
            elapsed.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
          }, 250);
          recording = { recorder, stream, timer };
          button.textContent = 'Stop';
          button.setAttribute('aria-pressed', 'true');
          button.setAttribute('aria-label', 'Stop recording and send');
        } catch (e) {
          this.error.textContent = `Recording failed: ${describe(e)}`;
        }
      },
    }, 'Record');
    return h('span', {}, button, ' ', elapsed);
  }
}
