// jetchat's web app: sign-in, then the chat list and one conversation at a time, drawn with
// plain DOM calls on @jetchat/client (its outbox, reconnect and resume do the hard parts).

import './style.css';
import { signIn, type Session } from './signin';
import { App } from './app';

async function main(): Promise<void> {
  const root = document.getElementById('app')!;
  let session: Session;
  try {
    session = await signIn(root);
  } catch (error) {
    root.replaceChildren(Object.assign(document.createElement('p'), {
      className: 'boot error',
      textContent: `Cannot start: ${String((error as Error)?.message ?? error)}`,
    }));
    return;
  }
  new App(root, session).start();
}

void main();
