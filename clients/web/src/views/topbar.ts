/** The top bar: who is signed in, the connection's state, and signing out. */

import type { ConnectionState } from '@jetchat/client';
import { h } from '../dom';

const STATE_TEXT: Record<ConnectionState, string> = {
  idle: 'Offline', connecting: 'Connecting…', open: 'Online', reconnecting: 'Reconnecting…', closed: 'Signed out',
};

export class TopBar {
  readonly el: HTMLElement;
  private readonly state: HTMLElement;
  private readonly me: HTMLElement;

  constructor(me: number, signOut: () => void) {
    this.state = h('span', { className: 'state', role: 'status', 'data-state': 'connecting' }, 'Connecting…');
    this.el = h('header', { id: 'topbar' },
      h('h1', {}, 'jetchat'),
      (this.me = h('span', { className: 'who muted', 'data-testid': 'me' }, `User ${me}`)),
      h('span', { className: 'spacer' }),
      this.state,
      h('button', { type: 'button', onclick: signOut }, 'Sign out'));
  }

  /** My name, as the directory has it. */
  showName(name: string): void {
    if (this.me.textContent !== name) this.me.textContent = name;
  }

  showState(state: ConnectionState): void {
    this.state.dataset.state = state;
    this.state.textContent = STATE_TEXT[state];
  }
}
