import { type GuildMember, type Interaction, type Message, PermissionFlagsBits } from 'discord.js';

/** A moderator has Manage Threads in the channel, or one of the configured moderator roles. */
export function isModerator(interaction: Interaction, moderatorRoleIds: readonly string[]): boolean {
  if (interaction.memberPermissions?.has(PermissionFlagsBits.ManageThreads)) return true;
  const member = interaction.member;
  if (!member) return false;
  const roles = Array.isArray(member.roles) ? member.roles : [...(member as GuildMember).roles.cache.keys()];
  return roles.some((roleId) => moderatorRoleIds.includes(roleId));
}

/** The same test for the author of a message (a guild message: its member and channel are known). */
export function isModeratorAuthor(message: Message<true>, moderatorRoleIds: readonly string[]): boolean {
  const member = message.member;
  if (!member) return false;
  if (member.permissionsIn(message.channel).has(PermissionFlagsBits.ManageThreads)) return true;
  return member.roles.cache.some((role) => moderatorRoleIds.includes(role.id));
}

/** Manage Server (Manage Guild): who may change the server's budgets. */
export function canManageServer(interaction: Interaction): boolean {
  return interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild) === true;
}
