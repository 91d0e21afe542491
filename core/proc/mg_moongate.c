/*
 * mg_moongate.c -- the binary's entry point.
 */
int mg_main(int argc, char **argv);

int
main(int argc, char **argv)
{
    return mg_main(argc, argv);
}
