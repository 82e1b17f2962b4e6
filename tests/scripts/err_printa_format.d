/* status: 1 */
BEGIN { @[1] = count(); printa("%s %@d\n", @); }
