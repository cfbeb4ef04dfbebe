import { type GuildMember, type Interaction, PermissionFlagsBits } from 'discord.js';

/** A moderator has Manage Threads in the channel, or one of the configured moderator roles. */
export function isModerator(interaction: Interaction, moderatorRoleIds: readonly string[]): boolean {
  if (interaction.memberPermissions?.has(PermissionFlagsBits.ManageThreads)) return true;
  const member = interaction.member;
  if (!member) return false;
  const roles = Array.isArray(member.roles) ? member.roles : [...(member as GuildMember).roles.cache.keys()];
  return roles.some((roleId) => moderatorRoleIds.includes(roleId));
}
