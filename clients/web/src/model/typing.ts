/** Who is typing in each chat: a `typing` frame starts a typer, who is forgotten at its
 * `stopped`, a message of theirs, or when the frame's `expires_in_ms` runs out. */

export class Typers {
  private readonly chats = new Map<number, Map<number, ReturnType<typeof setTimeout>>>();

  /** `changed` is called whenever someone starts or stops. */
  constructor(private readonly changed: () => void) {}

  started(chatId: number, userId: number, expiresInMs = 6_000): void {
    let chat = this.chats.get(chatId);
    if (!chat) this.chats.set(chatId, (chat = new Map()));
    clearTimeout(chat.get(userId));
    chat.set(userId, setTimeout(() => this.stopped(chatId, userId), expiresInMs));
    this.changed();
  }

  stopped(chatId: number, userId: number): void {
    const chat = this.chats.get(chatId);
    if (!chat?.has(userId)) return;
    clearTimeout(chat.get(userId));
    chat.delete(userId);
    this.changed();
  }

  /** The users typing in the chat, in the order they started. */
  in(chatId: number): number[] {
    return [...(this.chats.get(chatId)?.keys() ?? [])];
  }
}

/** "Bob is typing…", "Bob, Cy are typing…", or nothing; `name` names a user. */
export function typingText(userIds: number[], name: (userId: number) => string = (id) => `User ${id}`): string {
  const who = userIds.map(name);
  return who.length === 0 ? '' : `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…`;
}
