/* status: 1 */
::BEGIN:tick-1 { }
