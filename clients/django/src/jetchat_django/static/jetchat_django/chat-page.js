// The package's chat page (the `jetchat_django:client` view): a small chat on @jetchat/client,
// to use as it is or to copy. One chat at a time (`?chat=<id>` picks one): its history, the
// messages that come, and a form that sends through the client's outbox.
import { createClient } from 'jetchat-django';

const body = document.body;
const picker = document.getElementById('jetchat-chats');
const list = document.getElementById('jetchat-messages');
const form = document.getElementById('jetchat-send');
const shown = new Set();
let current = Number(new URLSearchParams(location.search).get('chat')) || undefined;
let tokens = 0;
let sockets = 0;

document.addEventListener('jetchat:token', () => {
  body.dataset.tokens = String(++tokens);
});

const client = createClient();
client.on('state', (state) => {
  body.dataset.state = state;
});
client.on('connected', () => {
  body.dataset.sockets = String(++sockets);
});

function show(message) {
  if (message.chat_id !== current || shown.has(message.message_id)) return;
  shown.add(message.message_id);
  const item = document.createElement('li');
  item.dataset.messageId = String(message.message_id);
  item.dataset.senderId = String(message.sender_id);
  item.textContent = message.content;
  // In the chat's order (message ids grow with it), wherever a late one belongs.
  const after = [...list.children].find((li) => Number(li.dataset.messageId) > message.message_id);
  list.insertBefore(item, after ?? null);
}

async function open(chatId) {
  current = chatId;
  shown.clear();
  list.replaceChildren();
  if (chatId === undefined) return;
  for (const message of await client.rest.messages(chatId)) {
    if (!message.deleted) show(message);
  }
  body.dataset.chat = String(chatId);
}

client.on('new_message', (frame) => show(frame));
client.on('message_sent', ({ ack, frame }) => {
  show({ ...frame, message_id: ack.message_id, chat_id: ack.chat_id, sender_id: Number(body.dataset.me) });
});

picker.addEventListener('change', () => {
  open(Number(picker.value) || undefined).catch(console.error);
});
form.addEventListener('submit', (event) => {
  event.preventDefault();
  const input = form.elements.content;
  if (current === undefined || !input.value.trim()) return;
  client.send({ chat_id: current, content: input.value, content_type: 'text' });
  input.value = '';
});

await client.connect();
const chats = await client.rest.chats();
for (const chat of chats) {
  const option = new Option(chat.name || `Chat ${chat.chat_id}`, String(chat.chat_id));
  picker.append(option);
}
if (current === undefined && chats.length) current = chats[0].chat_id;
picker.value = current === undefined ? '' : String(current);
await open(current);
