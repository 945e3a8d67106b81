/** A group's panel, opened from its conversation's header: the members with their roles and
 * what my role lets me do (add by user id, remove, appoint and dismiss admins, hand the group
 * over, rename, let members add, leave, delete with a confirmation). A refusal shows in the
 * panel by its error code; the frames the change brings redraw it. */

import type { Role } from '@jetchat/client';
import { h } from '../dom';
import {
  actionText, idsToAdd, refusalText, roleGiven,
  type GroupPermissions, type MemberAction, type MemberRow,
} from '../model/group';
import { avatar } from './avatar';

export interface GroupPanelActions {
  add(chatId: number, userIds: number[]): Promise<unknown>;
  remove(chatId: number, userId: number): Promise<unknown>;
  setRole(chatId: number, userId: number, role: Role): Promise<unknown>;
  rename(chatId: number, name: string): Promise<unknown>;
  setMembersCanAdd(chatId: number, on: boolean): Promise<unknown>;
  leave(chatId: number): Promise<unknown>;
  delete(chatId: number): Promise<unknown>;
}

/** What the panel draws of a group. */
export interface GroupState {
  chatId: number;
  name: string;
  myRole: Role | null;
  membersCanAdd: boolean;
  permissions: GroupPermissions;
  members: MemberRow[];
}

const ROLE_TEXT: Record<Role, string> = { owner: 'owner', admin: 'admin', member: 'member' };

/** A change waiting for "Yes": handing the group over, or deleting it. */
type Confirming = { kind: 'handover'; userId: number; name: string } | { kind: 'delete' };

export class GroupPanel {
  readonly el: HTMLElement;
  private readonly heading: HTMLElement;
  private readonly members: HTMLUListElement;
  private readonly addForm: HTMLFormElement;
  private readonly addInput: HTMLInputElement;
  private readonly settings: HTMLElement;
  private readonly nameInput: HTMLInputElement;
  private readonly canAdd: HTMLInputElement;
  private readonly deleteButton: HTMLButtonElement;
  private readonly confirmBox: HTMLElement;
  private readonly error: HTMLElement;
  private state: GroupState | undefined;
  private confirming: Confirming | undefined;
  /** A "members can add" change on its way: the box keeps what was clicked until it is done. */
  private canAddChanging = false;

  constructor(private readonly actions: GroupPanelActions) {
    this.heading = h('h3', { id: 'group-members-heading' }, 'Members');
    this.members = h('ul', { id: 'group-members', 'aria-labelledby': 'group-members-heading' });
    this.addInput = h('input', { id: 'group-add-ids', type: 'text', inputmode: 'numeric', placeholder: 'e.g. 4 or 4, 5', autocomplete: 'off', required: true });
    this.addForm = h('form', { id: 'group-add', onsubmit: (e: SubmitEvent) => { e.preventDefault(); this.add(); } },
      h('label', { for: 'group-add-ids' }, 'Add members by user id'),
      h('div', { className: 'row' }, this.addInput, h('button', { type: 'submit' }, 'Add')));
    this.nameInput = h('input', { id: 'group-rename', type: 'text', maxlength: 200, required: true, autocomplete: 'off' });
    this.canAdd = h('input', { id: 'group-members-can-add', type: 'checkbox', onchange: () => this.toggleCanAdd() });
    this.settings = h('div', { id: 'group-settings' },
      h('form', { onsubmit: (e: SubmitEvent) => { e.preventDefault(); this.rename(); } },
        h('label', { for: 'group-rename' }, 'Rename the group'),
        h('div', { className: 'row' }, this.nameInput, h('button', { type: 'submit' }, 'Rename'))),
      h('div', { className: 'check' }, this.canAdd, h('label', { for: 'group-members-can-add' }, 'Members can add others')));
    this.deleteButton = h('button', { type: 'button', className: 'danger', onclick: () => this.ask({ kind: 'delete' }) }, 'Delete group');
    this.confirmBox = h('div', { id: 'group-confirm', role: 'alertdialog', hidden: true });
    this.error = h('p', { id: 'group-error', className: 'error', role: 'alert' });
    this.el = h('section', { id: 'group-panel', 'aria-label': 'Group members and settings', hidden: true },
      this.heading,
      this.members,
      this.addForm,
      this.settings,
      h('div', { className: 'row' },
        h('button', { type: 'button', onclick: () => void this.run(() => this.actions.leave(this.chatId())) }, 'Leave group'),
        this.deleteButton),
      this.confirmBox,
      this.error);
  }

  get open(): boolean {
    return !this.el.hidden;
  }

  /** Shows the panel for a group (its error and confirmation cleared). */
  show(state: GroupState): void {
    const other = this.state?.chatId !== state.chatId;
    if (other || !this.open) {
      this.error.textContent = '';
      this.addInput.value = '';
      this.nameInput.value = state.name;
      this.confirming = undefined;
    }
    this.el.hidden = false;
    this.draw(state);
  }

  hide(): void {
    this.el.hidden = true;
    this.confirming = undefined;
  }

  /** Draws the group again (a member, a role, its name or settings changed). */
  draw(state: GroupState): void {
    const renamed = this.state?.chatId === state.chatId && this.state.name !== state.name;
    this.state = state;
    this.heading.textContent = `Members (${state.members.length})`;
    this.members.replaceChildren(...state.members.map((row) => this.memberItem(row)));
    this.addForm.hidden = !state.permissions.add;
    this.settings.hidden = !state.permissions.edit;
    if (renamed && document.activeElement !== this.nameInput) this.nameInput.value = state.name;
    if (!this.canAddChanging) this.canAdd.checked = state.membersCanAdd;
    this.deleteButton.hidden = !state.permissions.delete;
    // A confirmation my role no longer allows (or for someone gone) is dropped.
    const c = this.confirming;
    if (c && (c.kind === 'delete' ? !state.permissions.delete
      : !state.members.some((m) => m.userId === c.userId && m.actions.includes('make_owner')))) this.confirming = undefined;
    this.drawConfirm();
  }

  private memberItem(row: MemberRow): HTMLElement {
    return h('li', { 'data-user-id': row.userId, 'data-role': row.role },
      avatar(row.face),
      h('span', { className: 'name' }, row.name),
      h('span', { className: 'role', 'data-testid': 'role' }, ROLE_TEXT[row.role]),
      row.actions.length ? h('span', { className: 'member-actions' }, ...row.actions.map((action) => {
        const { text, label } = actionText(action, row.name);
        return h('button', { type: 'button', 'aria-label': label, onclick: () => this.memberAction(row, action) }, text);
      })) : null);
  }

  private memberAction(row: MemberRow, action: MemberAction): void {
    const chatId = this.chatId();
    if (action === 'make_owner') return this.ask({ kind: 'handover', userId: row.userId, name: row.name });
    if (action === 'remove') return void this.run(() => this.actions.remove(chatId, row.userId));
    void this.run(() => this.actions.setRole(chatId, row.userId, roleGiven(action)!));
  }

  private ask(confirming: Confirming): void {
    this.confirming = confirming;
    this.error.textContent = '';
    this.drawConfirm();
    this.confirmBox.querySelector('button')?.focus();
  }

  private drawConfirm(): void {
    const c = this.confirming;
    this.confirmBox.hidden = !c;
    if (!c) return this.confirmBox.replaceChildren();
    const chatId = this.chatId();
    const [question, yes, run] = c.kind === 'delete'
      ? ['Delete this group and its whole history for everyone? This cannot be undone.', 'Delete for everyone', () => this.actions.delete(chatId)]
      : [`Hand the group over to ${c.name}? You will become an admin.`, `Hand over to ${c.name}`, () => this.actions.setRole(chatId, c.userId, 'owner')];
    this.confirmBox.replaceChildren(
      h('p', { id: 'group-confirm-question' }, question),
      h('div', { className: 'row' },
        h('button', { type: 'button', className: 'danger', onclick: () => { this.confirming = undefined; this.drawConfirm(); void this.run(run); } }, yes),
        h('button', { type: 'button', onclick: () => { this.confirming = undefined; this.drawConfirm(); } }, 'Cancel')));
    this.confirmBox.setAttribute('aria-labelledby', 'group-confirm-question');
  }

  private add(): void {
    const state = this.state;
    if (!state) return;
    const ids = idsToAdd(this.addInput.value, state.members.map((m) => m.userId));
    if (typeof ids === 'string') {
      this.error.textContent = ids;
      return;
    }
    void this.run(async () => {
      await this.actions.add(state.chatId, ids);
      this.addInput.value = '';
    });
  }

  private rename(): void {
    const name = this.nameInput.value.trim();
    if (!name) return;
    void this.run(() => this.actions.rename(this.chatId(), name));
  }

  private toggleCanAdd(): void {
    const on = this.canAdd.checked;
    this.canAddChanging = true;
    void this.run(() => this.actions.setMembersCanAdd(this.chatId(), on)).then(() => {
      this.canAddChanging = false;
      if (this.state) this.canAdd.checked = this.state.membersCanAdd;
    });
  }

  /** Runs a change; a refusal shows in the panel. Whether it was applied. */
  private async run(change: () => Promise<unknown>): Promise<boolean> {
    this.error.textContent = '';
    try {
      await change();
      return true;
    } catch (e) {
      this.error.textContent = refusalText(e);
      return false;
    }
  }

  private chatId(): number {
    return this.state!.chatId;
  }
}
