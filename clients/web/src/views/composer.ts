/** The composer of the open chat: the message being answered, the text field, attach, record
 * (where the browser can), send, the upload's progress and what went wrong. */

import { describe, h } from '../dom';
import type { Quote } from '../model/conversation';
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
}

export class ComposerView {
  /** "Replying to" and its quote, above the form. */
  readonly replying: HTMLElement;
  readonly form: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly progress: HTMLProgressElement;
  private readonly error: HTMLElement;

  constructor(private readonly actions: ComposerActions) {
    this.replying = h('div', { id: 'replying', hidden: true });
    const input = (this.input = h('input', { id: 'compose', type: 'text', autocomplete: 'off', placeholder: 'Message', maxlength: 10000, 'aria-label': 'Message' }));
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
          actions.typing(false);
        } catch (e) {
          error.textContent = describe(e);
        }
      },
    },
      input,
      h('label', { for: 'attach', className: 'file' }, h('span', { role: 'button', tabindex: 0, className: 'attach', 'aria-label': 'Attach a voice note or video', title: 'Attach a voice note or video',
        onkeydown: (e: KeyboardEvent) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); file.click(); } },
      }, 'Attach')),
      file,
      this.recorder(),
      h('button', { type: 'submit', className: 'primary' }, 'Send'),
      this.progress,
      error);
    input.addEventListener('input', () => actions.typing(input.value !== ''));
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
